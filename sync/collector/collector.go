package collector

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/ember-edge/ember/sync/consumer"
	"github.com/ember-edge/ember/sync/uplink"
)

// Options configure a Collector. URL, Fleet and Sink are required.
type Options struct {
	// URL is the broker: tcp://, mqtt://, ssl:// or mqtts:// host:port.
	URL   string
	Fleet string
	// Group is the shared subscription group (default "ember-collector"):
	// collectors of one group split the messages between them.
	Group string
	// ClientID defaults to "ember-collector-" and a random suffix: each
	// member needs its own.
	ClientID           string
	Username, Password string
	TLS                *tls.Config
	// Topics are the devices' topic templates (zero: the defaults),
	// Topics.Ack included.
	Topics uplink.Topics
	Sink   Sink
	// BatchMessages bounds the envelopes stored in one transaction
	// (default 256); Linger is how long a batch waits for more (default
	// 20ms).
	BatchMessages int
	Linger        time.Duration
	// MaxDecompressed bounds one envelope; ≤ 0 is the uplink's default.
	MaxDecompressed int64
	KeepAlive       uint16 // seconds, default 30
	Logger          *slog.Logger
}

// Stats count what a collector has done.
type Stats struct {
	Messages, Rejected, Records, Batches, StoreErrors, Acks uint64
}

// Collector moves envelopes from the broker into a Sink.
type Collector struct {
	o       Options
	log     *slog.Logger
	matcher *consumer.TopicMatcher
	in      chan msg
	stats   struct{ messages, rejected, records, batches, storeErrors, acks atomic.Uint64 }
}

type msg struct {
	cli *paho.Client
	p   *paho.Publish
	at  time.Time
}

// New checks o.
func New(o Options) (*Collector, error) {
	var errs []error
	if o.URL == "" || o.Fleet == "" || o.Sink == nil {
		errs = append(errs, errors.New("url, fleet and a sink must be set"))
	}
	if o.Group == "" {
		o.Group = "ember-collector"
	}
	if strings.ContainsAny(o.Group, "/+#") {
		errs = append(errs, fmt.Errorf("group %q must not hold '/', '+' or '#'", o.Group))
	}
	if o.ClientID == "" {
		o.ClientID = fmt.Sprintf("ember-collector-%d", time.Now().UnixNano())
	}
	if o.BatchMessages <= 0 {
		o.BatchMessages = 256
	}
	if o.Linger <= 0 {
		o.Linger = 20 * time.Millisecond
	}
	if o.KeepAlive == 0 {
		o.KeepAlive = 30
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("collector: %w", err)
	}
	return &Collector{o: o, log: o.Logger.With("component", "collector", "client_id", o.ClientID),
		matcher: consumer.NewTopicMatcher(o.Fleet, o.Topics), in: make(chan msg, o.BatchMessages)}, nil
}

// Stats returns the counters.
func (c *Collector) Stats() Stats {
	return Stats{Messages: c.stats.messages.Load(), Rejected: c.stats.rejected.Load(), Records: c.stats.records.Load(),
		Batches: c.stats.batches.Load(), StoreErrors: c.stats.storeErrors.Load(), Acks: c.stats.acks.Load()}
}

// Filters returns the shared subscription filters: every record topic
// and the fleet updater's reported topic, device segment +.
func (c *Collector) Filters() []string {
	fs := append(c.matcher.Filters(), "fleet/v1/"+c.o.Fleet+"/+/reported")
	for i, f := range fs {
		fs[i] = "$share/" + c.o.Group + "/" + f
	}
	return fs
}

// brokerURL turns tcp:// and ssl:// into what autopaho dials.
func brokerURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "tcp", "mqtt":
		u.Scheme = "mqtt"
	case "ssl", "mqtts", "tls":
		u.Scheme = "tls"
	default:
		return nil, fmt.Errorf("scheme %q is not tcp, mqtt, ssl or mqtts", u.Scheme)
	}
	return u, nil
}

// Run collects until ctx ends (then it returns nil). It keeps
// reconnecting while the broker is away, and keeps retrying a batch
// while the sink fails, acknowledging nothing meanwhile (the broker's
// flow control then stops deliveries to this member).
func (c *Collector) Run(ctx context.Context) error {
	u, err := brokerURL(c.o.URL)
	if err != nil {
		return fmt.Errorf("collector: url %q: %w", c.o.URL, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cfg := autopaho.ClientConfig{
		ServerUrls: []*url.URL{u}, TlsCfg: c.o.TLS, KeepAlive: c.o.KeepAlive,
		// Stateless: no session outlives the connection. What a member
		// held unacknowledged when it died the devices send again.
		CleanStartOnInitialConnection: true, SessionExpiryInterval: 0,
		ReconnectBackoff: func(n int) time.Duration { return min(time.Duration(n+1)*250*time.Millisecond, 5*time.Second) },
		ConnectTimeout:   10 * time.Second,
		ConnectUsername:  c.o.Username, ConnectPassword: []byte(c.o.Password),
		OnConnectionUp: func(cm *autopaho.ConnectionManager, _ *paho.Connack) {
			c.log.Info("connected", "broker", c.o.URL)
			go c.subscribe(ctx, cm)
		},
		OnConnectError: func(err error) { c.log.Debug("connect", "err", err) },
		ClientConfig: paho.ClientConfig{
			ClientID:                   c.o.ClientID,
			EnableManualAcknowledgment: true,
			SendAcksInterval:           5 * time.Millisecond,
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
				select {
				case c.in <- msg{cli: pr.Client, p: pr.Packet, at: time.Now()}:
				case <-ctx.Done():
				}
				return true, nil
			}},
			OnClientError: func(err error) { c.log.Warn("client error", "err", err) },
		},
	}
	cm, err := autopaho.NewConnection(ctx, cfg)
	if err != nil {
		return fmt.Errorf("collector: %w", err)
	}
	err = c.loop(ctx, cm)
	dctx, dcancel := context.WithTimeout(context.Background(), time.Second)
	defer dcancel()
	cm.Disconnect(dctx)
	return err
}

func (c *Collector) subscribe(ctx context.Context, cm *autopaho.ConnectionManager) {
	var subs []paho.SubscribeOptions
	for _, f := range c.Filters() {
		subs = append(subs, paho.SubscribeOptions{Topic: f, QoS: 1})
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := cm.Subscribe(sctx, &paho.Subscribe{Subscriptions: subs}); err != nil {
		c.log.Error("subscribe", "err", err)
	}
}

// loop gathers messages into batches and stores each.
func (c *Collector) loop(ctx context.Context, cm *autopaho.ConnectionManager) error {
	var batch []msg
	var linger <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-c.in:
			batch = append(batch, m)
			if len(batch) < c.o.BatchMessages {
				if linger == nil {
					linger = time.After(c.o.Linger)
				}
				continue
			}
		case <-linger:
		}
		linger = nil
		if err := c.handle(ctx, cm, batch); err != nil {
			return nil // ctx ended while retrying
		}
		batch = batch[:0]
	}
}

// handle decodes, stores (retrying until the sink takes the batch or
// ctx ends), publishes the acks, and acknowledges the messages.
func (c *Collector) handle(ctx context.Context, cm *autopaho.ConnectionManager, ms []msg) error {
	var b Batch
	for _, m := range ms {
		c.stats.messages.Add(1)
		if device, ok := c.reportDevice(m.p.Topic); ok {
			b.Reports = append(b.Reports, Report{DeviceID: device, Payload: append([]byte(nil), m.p.Payload...), ReceivedAt: m.at})
			continue
		}
		env, err := c.decode(m.p)
		if err != nil {
			c.stats.rejected.Add(1)
			c.log.Warn("envelope rejected", "topic", m.p.Topic, "err", err)
			continue
		}
		b.Deliveries = append(b.Deliveries, Delivery{Topic: m.p.Topic, Payload: m.p.Payload, Envelope: env, ReceivedAt: m.at})
	}
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		err := c.o.Sink.Store(ctx, b)
		if err == nil {
			break
		}
		c.stats.storeErrors.Add(1)
		c.log.Warn("storing a batch failed; retrying, acknowledging nothing", "envelopes", len(b.Deliveries), "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	c.stats.batches.Add(1)
	for _, d := range b.Deliveries {
		c.stats.records.Add(uint64(len(d.Envelope.Records)))
	}
	c.publishAcks(ctx, cm, b.Deliveries)
	for _, m := range ms {
		if err := m.cli.Ack(m.p); err != nil {
			c.log.Debug("ack", "err", err)
		}
	}
	return nil
}

func (c *Collector) reportDevice(topic string) (string, bool) {
	rest, ok := strings.CutPrefix(topic, "fleet/v1/"+c.o.Fleet+"/")
	if !ok {
		return "", false
	}
	device, ok := strings.CutSuffix(rest, "/reported")
	return device, ok && device != "" && !strings.Contains(device, "/")
}

func (c *Collector) decode(p *paho.Publish) (*uplink.Envelope, error) {
	env, err := uplink.DecodeEnvelope(p.Payload, c.o.MaxDecompressed)
	if err != nil {
		return nil, err
	}
	device, kind, ok := c.matcher.Match(p.Topic)
	switch {
	case !ok:
		return nil, fmt.Errorf("topic %q is not a record topic", p.Topic)
	case device != "" && device != env.DeviceID:
		return nil, fmt.Errorf("device %q on the topic of device %q", env.DeviceID, device)
	case kind != env.Kind:
		return nil, fmt.Errorf("kind %q on the %s topic", env.Kind, kind)
	case env.OutboxID == "":
		return nil, errors.New("no outbox_id")
	}
	return env, nil
}

// publishAcks publishes, per device and outbox, the spans of the
// envelopes just stored. An ack that does not get through is not
// retried: the device sends the records again and they are acked then.
func (c *Collector) publishAcks(ctx context.Context, cm *autopaho.ConnectionManager, ds []Delivery) {
	type key struct{ device, outbox string }
	acks := map[key]*uplink.Ack{}
	var order []key
	for _, d := range ds {
		e := d.Envelope
		if e.Through == 0 {
			continue // a device before confirmed delivery
		}
		k := key{e.DeviceID, e.OutboxID}
		a := acks[k]
		if a == nil {
			a = &uplink.Ack{DeviceID: e.DeviceID, OutboxID: e.OutboxID}
			acks[k] = a
			order = append(order, k)
		}
		a.Ranges = append(a.Ranges, uplink.AckRange{Priority: e.Records[0].Priority, After: e.After, Through: e.Through})
	}
	for _, k := range order {
		payload, _ := uplink.EncodeAck(*acks[k])
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := cm.Publish(pctx, &paho.Publish{Topic: c.o.Topics.AckTopic(c.o.Fleet, k.device), QoS: 1, Payload: payload})
		cancel()
		if err != nil {
			c.log.Warn("ack not published; the device will send again", "device", k.device, "err", err)
			continue
		}
		c.stats.acks.Add(1)
	}
}
