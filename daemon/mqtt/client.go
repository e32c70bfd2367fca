package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/daemon/pipeline"
	"github.com/ember-edge/ember/internal/mqtturl"
	"github.com/ember-edge/ember/internal/tlsconf"
)

// Client is emberd's connection to an external broker. Its session is
// persistent (clean session off, a stable client id) and its
// subscriptions QoS 1, so the broker holds messages while emberd is down
// or busy; each message is acknowledged only once its jobs are committed.
type Client struct {
	cfg         config.External
	in          *Ingester
	log         *slog.Logger
	statusTopic string
	cli         paho.Client
	connected   atomic.Bool
	// refused is set when a message could not be committed: the session
	// is restarted after a pause, so the broker redelivers it.
	refused chan struct{}
	// workers handle messages: one ordering key (a topic, or a Sparkplug
	// edge node) always goes to the same worker, so its messages are
	// handled in arrival order, while different keys commit concurrently.
	workers []*inbox
	// gate holds messages that a full backlog would refuse.
	gate    *backlogGate
	stopped chan struct{}
	dropped atomic.Uint64 // QoS 0 messages dropped for a full inbox
	// holds counts messages held for a full backlog; holdLogged is when
	// the log last said so (Unix nanoseconds).
	holds, holdLogged atomic.Int64
}

const (
	// clientWorkers is the number of message workers.
	clientWorkers = 32
	// maxInboxQoS0 is the length of a worker's inbox past which QoS 0
	// messages are dropped; QoS 1 and 2 messages are bounded by the
	// broker's in-flight window instead.
	maxInboxQoS0 = 4096
)

// NewClient prepares the client; Run connects.
func NewClient(cfg config.External, in *Ingester, deviceID string, log *slog.Logger) (*Client, error) {
	c := &Client{cfg: cfg, in: in, log: log.With("component", "mqtt-client", "broker", cfg.URL),
		statusTopic: StatusTopic(deviceID), refused: make(chan struct{}, 1), stopped: make(chan struct{})}
	for range clientWorkers {
		c.workers = append(c.workers, newInbox())
	}
	c.gate = newBacklogGate(c.backlogLimits, in.intake.Backlog)
	opts := paho.NewClientOptions().
		AddBroker(pahoURL(cfg.URL)).
		SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password).
		SetCleanSession(false).
		SetOrderMatters(true).
		SetAutoAckDisabled(true).
		SetKeepAlive(cfg.KeepAlive.D()).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(cfg.Backoff.Min.D()).
		SetMaxReconnectInterval(cfg.Backoff.Max.D()).
		SetBinaryWill(c.statusTopic, []byte("offline"), 1, true).
		SetOnConnectHandler(c.onConnect).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			c.connected.Store(false)
			c.log.Warn("lost the connection to the external broker; reconnecting", "err", err)
		}).
		SetDefaultPublishHandler(c.onMessage)
	if cfg.CA != "" || cfg.TLS.Cert != "" {
		tc, err := clientTLS(cfg)
		if err != nil {
			return nil, err
		}
		opts.SetTLSConfig(tc)
	}
	c.cli = paho.NewClient(opts)
	return c, nil
}

func clientTLS(cfg config.External) (*tls.Config, error) {
	return tlsconf.Client{CA: cfg.CA, Cert: cfg.TLS.Cert, Key: cfg.TLS.Key, Keys: tlsconf.Keys{
		CA: "mqtt.external.ca", Cert: "mqtt.external.tls.cert", Key: "mqtt.external.tls.key"}}.Config()
}

func (c *Client) onConnect(cli paho.Client) {
	c.connected.Store(true)
	c.log.Info("connected to the external broker")
	for _, f := range c.in.Filters() {
		if t := cli.Subscribe(f, 1, nil); t.WaitTimeout(10*time.Second) && t.Error() != nil {
			c.log.Error("subscribe", "filter", f, "err", t.Error())
		}
	}
	cli.Publish(c.statusTopic, 1, true, []byte("online"))
}

// onMessage routes a message to its worker's inbox, never waiting: paho
// calls it on the goroutine that also reads the PUBACKs of emberd's own
// publishes (router.go matchAndDispatch, fed by net.go
// startIncomingComms), so a handler that waited would hold every result
// publish behind the messages ahead of its PUBACK. Backpressure comes
// from the broker instead: it sends no more unacknowledged messages than
// its in-flight window.
func (c *Client) onMessage(_ paho.Client, m paho.Message) {
	select {
	case <-c.stopped: // not acknowledged: the broker keeps it
		return
	default:
	}
	if !c.workers[orderKey(m.Topic())%uint32(len(c.workers))].put(m, maxInboxQoS0) {
		if n := c.dropped.Add(1); n&(n-1) == 0 { // 1, 2, 4, … : the log stays readable
			c.log.Warn("QoS 0 messages dropped: emberd is behind", "topic", m.Topic(), "dropped", n)
		}
	}
}

// orderKey hashes what must stay in order: a Sparkplug edge node's
// messages (its sequence numbers span its devices), else one topic.
func orderKey(t string) uint32 {
	if rest, ok := strings.CutPrefix(t, "spBv1.0/"); ok {
		parts := strings.SplitN(rest, "/", 4)
		if len(parts) >= 3 {
			t = parts[0] + "/" + parts[2]
		}
	}
	h := fnv.New32a()
	h.Write([]byte(t))
	return h.Sum32()
}

// work handles one worker's messages in arrival order. Each message's
// writes are queued for the group commit as it arrives; a second
// goroutine acknowledges them in the same order as their commits land,
// so a worker's messages share commits instead of waiting for one each.
// A QoS 1 or 2 message whose pipeline's backlog is full is held, and the
// messages behind it with it (their order is kept), unacknowledged,
// until jobs starting make room: the broker keeps them meanwhile, and
// its in-flight window stops it sending more than it can hold.
func (c *Client) work(ctx context.Context, in *inbox) {
	queued := make(chan queuedMessage, 64)
	var acker sync.WaitGroup
	acker.Go(func() {
		for q := range queued {
			c.settle(q)
		}
	})
	defer func() {
		close(queued)
		acker.Wait()
	}()
	for {
		m, ok := in.next(ctx)
		if !ok {
			return
		}
		var held []string
		if m.Qos() > 0 {
			if held, ok = c.hold(ctx, m); !ok {
				return
			}
		}
		q := c.queue(m)
		q.held = held
		select {
		case queued <- q:
		case <-ctx.Done():
			// Queued for the commit, not acknowledged: a redelivery is
			// recognised.
			c.gate.release(held)
			return
		}
	}
}

// hold waits until m's pipelines have room for it, and returns the
// pipelines it was admitted to; false when ctx ends first.
func (c *Client) hold(ctx context.Context, m paho.Message) ([]string, bool) {
	if ok, names := c.gate.admit(m.Topic()); ok {
		return names, true
	}
	// A burst holds once per job that starts: the log says so every
	// holdLogEvery, with how many holds there were.
	holds := c.holds.Add(1)
	now := time.Now().UnixNano()
	if last := c.holdLogged.Load(); now-last >= int64(holdLogEvery) && c.holdLogged.CompareAndSwap(last, now) {
		c.log.Info("pipeline backlog full: holding messages unacknowledged until it has room", "topic", m.Topic(), "holds", holds)
	}
	ok, names := c.gate.wait(ctx, m.Topic())
	return names, ok
}

// holdLogEvery spaces the log lines that say messages are being held.
const holdLogEvery = 10 * time.Second

// queuedMessage is a message whose writes are queued for the group commit.
type queuedMessage struct {
	m    paho.Message
	wait func() error
	// held names the pipelines the gate admitted it to.
	held []string
}

func (c *Client) queue(m paho.Message) queuedMessage {
	cli := c.cli
	msg := pipeline.Message{
		Broker: "external", Topic: m.Topic(), Payload: m.Payload(), QoS: m.Qos(), Dup: m.Duplicate(),
		// The broker numbers the packets of our session.
		Client: "external:" + c.cfg.ClientID, PacketID: m.MessageID(), Received: time.Now(),
	}
	wait := c.in.HandleAsync(context.Background(), msg, func(t string, payload []byte) {
		cli.Publish(t, 0, false, payload)
	})
	return queuedMessage{m: m, wait: wait}
}

// settle acknowledges a committed message; one that could not be
// committed stays unacknowledged, and the session is restarted so that
// the broker redelivers it.
func (c *Client) settle(q queuedMessage) {
	err := q.wait()
	c.gate.release(q.held)
	if err != nil {
		c.log.Error("message not accepted; not acknowledged, the broker will redeliver it", "topic", q.m.Topic(), "err", err)
		select {
		case c.refused <- struct{}{}:
		default:
		}
		return
	}
	q.m.Ack()
}

// Run connects and stays connected until ctx ends, then publishes a
// retained "offline" and disconnects.
func (c *Client) Run(ctx context.Context) error {
	wctx, stopWorkers := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, in := range c.workers {
		wg.Go(func() { c.work(wctx, in) })
	}
	defer func() {
		// What a worker has not handled is not acknowledged, and the
		// broker keeps it for the next session.
		close(c.stopped)
		stopWorkers()
		wg.Wait()
	}()
	// A reload or an update changes what the pipelines match.
	changed, stopChanges := c.in.pipes.Changed()
	defer stopChanges()
	c.cli.Connect() // retries in the background until it connects
	backoff := c.cfg.Backoff.Min.D()
	for {
		select {
		case <-changed:
			c.Resubscribe()
		case <-ctx.Done():
			if c.cli.IsConnectionOpen() {
				c.cli.Publish(c.statusTopic, 1, true, []byte("offline")).WaitTimeout(2 * time.Second)
			}
			c.cli.Disconnect(250)
			return nil
		case <-c.refused:
			// Unacknowledged messages come back only on a new session
			// connection: wait, then reconnect.
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				continue
			}
			backoff = min(backoff*2, c.cfg.Backoff.Max.D())
			c.log.Info("reconnecting so the broker redelivers unacknowledged messages")
			c.cli.Disconnect(250)
			c.connected.Store(false)
			c.cli.Connect()
		}
	}
}

// Connected reports whether the client is connected.
func (c *Client) Connected() bool { return c.connected.Load() }

// Publish sends a message to the external broker.
func (c *Client) Publish(t string, payload []byte, qos byte, retain bool) error {
	if !c.cli.IsConnectionOpen() {
		return errors.New("not connected to the external broker")
	}
	tok := c.cli.Publish(t, qos, retain, payload)
	if !tok.WaitTimeout(5 * time.Second) {
		return errors.New("publish to the external broker timed out")
	}
	return tok.Error()
}

// Resubscribe subscribes to the current filters (after a pipeline reload).
func (c *Client) Resubscribe() {
	if c.cli.IsConnectionOpen() {
		for _, f := range c.in.Filters() {
			c.cli.Subscribe(f, 1, nil)
		}
	}
}

// pahoURL is the configured URL as paho takes it; the config was
// validated, so an error leaves it as it is for paho to report.
func pahoURL(raw string) string {
	if u, err := mqtturl.Paho(raw); err == nil {
		return u
	}
	return raw
}
