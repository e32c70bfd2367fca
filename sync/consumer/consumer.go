package consumer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/ember-edge/ember/internal/mqtturl"
	"github.com/ember-edge/ember/sync/uplink"
)

// Options configure a Consumer. URL, Fleet and Out are required.
type Options struct {
	// URL is the broker: tcp://, ssl://, mqtt:// or mqtts:// host:port.
	URL   string
	Fleet string
	// ClientID names the persistent session: keep it stable across runs,
	// so the broker holds messages while the consumer is away. Default
	// "ember-consumer-" + Fleet.
	ClientID           string
	Username, Password string
	TLS                *tls.Config
	// Topics are the devices' topic templates (zero: the defaults).
	Topics uplink.Topics
	// Share, when set, subscribes as a member of the shared subscription
	// group Share ($share/<Share>/<filter>): the broker spreads the
	// messages over the group's consumers. Each member then needs the
	// same de-duplication store, which a Sink file is not: use shared
	// groups with a sink of your own keyed by (device_id, outbox_id, seq).
	Share string
	// Out is the JSON-lines file.
	Out  string
	Sink SinkOptions
	// KeepAlive is the MQTT keepalive (default 30s).
	KeepAlive time.Duration
	Logger    *slog.Logger
}

// Consumer connects a Sink to the broker.
type Consumer struct {
	o       Options
	log     *slog.Logger
	sink    *Sink
	matcher *TopicMatcher
}

// New opens the sink; Run connects.
func New(o Options) (*Consumer, error) {
	if o.URL == "" || o.Fleet == "" || o.Out == "" {
		return nil, errors.New("consumer: url, fleet and out must be set")
	}
	if _, err := mqtturl.Paho(o.URL); err != nil {
		return nil, fmt.Errorf("consumer: url %q: %w", o.URL, err)
	}
	if o.ClientID == "" {
		o.ClientID = "ember-consumer-" + o.Fleet
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Sink.Logger == nil {
		o.Sink.Logger = o.Logger.With("component", "uplink-consumer")
	}
	sink, err := OpenSink(o.Out, o.Sink)
	if err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	return &Consumer{o: o, log: o.Logger.With("component", "uplink-consumer"), sink: sink,
		matcher: NewTopicMatcher(o.Fleet, o.Topics)}, nil
}

// Sink returns the consumer's sink (for its Stats).
func (c *Consumer) Sink() *Sink { return c.sink }

// Filters returns the topic filters the consumer subscribes to.
func (c *Consumer) Filters() []string {
	var out []string
	for _, f := range c.matcher.Filters() {
		if c.o.Share != "" {
			f = "$share/" + c.o.Share + "/" + f
		}
		out = append(out, f)
	}
	return out
}

// Run consumes until ctx ends (then it returns nil) or the file fails
// (then it returns why, leaving the failed message unacknowledged for
// the broker to deliver again). It closes the sink when it returns.
func (c *Consumer) Run(ctx context.Context) error {
	defer c.sink.Close()
	broker, _ := mqtturl.Paho(c.o.URL)
	fatal := make(chan error, 1)
	handle := func(_ paho.Client, m paho.Message) {
		n, err := c.sink.Handle(m.Topic(), m.Payload(), c.matcher)
		switch {
		case errors.Is(err, ErrRejected):
			c.log.Warn("envelope rejected", "topic", m.Topic(), "err", err)
		case err != nil:
			select {
			case fatal <- err:
			default:
			}
			return // not acknowledged
		default:
			c.log.Debug("envelope", "topic", m.Topic(), "new", n)
		}
		m.Ack()
	}
	opts := paho.NewClientOptions().
		AddBroker(broker).
		SetClientID(c.o.ClientID).
		SetUsername(c.o.Username).
		SetPassword(c.o.Password).
		SetCleanSession(false).
		SetOrderMatters(true).
		SetAutoAckDisabled(true).
		SetKeepAlive(c.o.KeepAlive).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(2 * time.Second).
		SetMaxReconnectInterval(30 * time.Second).
		SetDefaultPublishHandler(handle).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			c.log.Warn("lost the broker; reconnecting", "err", err)
		}).
		SetOnConnectHandler(func(cli paho.Client) {
			c.log.Info("connected", "broker", c.o.URL)
			for _, f := range c.Filters() {
				if t := cli.Subscribe(f, 1, handle); t.WaitTimeout(30*time.Second) && t.Error() != nil {
					c.log.Error("subscribe", "filter", f, "err", t.Error())
				}
			}
		})
	if c.o.TLS != nil {
		opts.SetTLSConfig(c.o.TLS)
	}
	cli := paho.NewClient(opts)
	tok := cli.Connect() // ConnectRetry: keeps trying until connected or disconnected
	defer cli.Disconnect(250)
	slow := time.NewTimer(10 * time.Second)
	defer slow.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-fatal:
			return fmt.Errorf("consumer: %w", err)
		case <-slow.C:
			select {
			case <-tok.Done():
			default:
				c.log.Warn("not connected to the broker yet; still trying", "broker", c.o.URL)
			}
		}
	}
}
