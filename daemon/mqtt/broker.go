package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/daemon/pipeline"
	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/daemon/topic"
	"github.com/ember-edge/ember/internal/tlsconf"
)

// Broker is the embedded MQTT broker.
type Broker struct {
	srv  *mochi.Server
	self *mochi.Client // emberd's own inline client, speaking MQTT 5
	in   *Ingester
	auth *authHook
	hook *ingestHook
	cfg  config.Embedded
	log  *slog.Logger
	addr []string

	statusTopic string

	// connMu orders the end of every connection before the server's
	// Close: mochi gives a refused connection (never a registered client)
	// no other happens-before edge with Close, and the race detector
	// reports mochi's reads in it against Close.
	connMu sync.Mutex
}

// syncedListener passes each connection's end through mu.
type syncedListener struct {
	listeners.Listener
	mu *sync.Mutex
}

func (l syncedListener) Serve(establish listeners.EstablishFn) {
	l.Listener.Serve(func(id string, c net.Conn) error {
		err := establish(id, c)
		l.mu.Lock()
		l.mu.Unlock() //nolint:staticcheck // an empty critical section: a happens-before edge
		return err
	})
}

// NewBroker builds the embedded broker and opens its listeners.
func NewBroker(cfg config.Embedded, in *Ingester, deviceID string, log *slog.Logger) (*Broker, error) {
	srv := mochi.New(&mochi.Options{
		Capabilities: capabilities(cfg),
		InlineClient: true,
		// mochi logs every client and lifecycle step at info; keep its
		// warnings and errors only.
		Logger: slog.New(minLevel{log.Handler(), slog.LevelWarn}).With("component", "mqtt-broker"),
	})
	b := &Broker{srv: srv, in: in, cfg: cfg, log: log, statusTopic: StatusTopic(deviceID)}
	b.self = srv.NewClient(nil, "local", "emberd", true)
	b.self.Properties.ProtocolVersion = 5
	// Order matters: a client is admitted, then counted, then ingested.
	b.auth = newAuthHook(srv, cfg, deviceID)
	if err := srv.AddHook(b.auth, nil); err != nil {
		return nil, err
	}
	if err := srv.AddHook(newLimitHook(srv, cfg.Limits), nil); err != nil {
		return nil, err
	}
	b.hook = &ingestHook{b: b}
	if err := srv.AddHook(b.hook, nil); err != nil {
		return nil, err
	}
	if cfg.Listen != "" {
		if err := srv.AddListener(syncedListener{listeners.NewTCP(listeners.Config{ID: "tcp", Address: cfg.Listen}), &b.connMu}); err != nil {
			return nil, fmt.Errorf("mqtt listener %s: %w", cfg.Listen, err)
		}
	}
	if cfg.TLS.Cert != "" {
		tc, err := brokerTLS(cfg.TLS)
		if err != nil {
			return nil, err
		}
		if err := srv.AddListener(syncedListener{listeners.NewTCP(listeners.Config{ID: "tls", Address: cfg.TLS.Listen, TLSConfig: tc}), &b.connMu}); err != nil {
			return nil, fmt.Errorf("mqtt TLS listener %s: %w", cfg.TLS.Listen, err)
		}
	}
	return b, nil
}

// StatusTopic is where emberd keeps its retained online/offline status.
func StatusTopic(deviceID string) string { return topic.Status(deviceID) }

func brokerTLS(c config.BrokerTLS) (*tls.Config, error) {
	return tlsconf.Server{Cert: c.Cert, Key: c.Key, ClientCA: c.ClientCA, Keys: tlsconf.Keys{
		Cert: "mqtt.embedded.tls.cert", Key: "mqtt.embedded.tls.key", CA: "mqtt.embedded.tls.client_ca"}}.Config()
}

// Addrs returns the listening addresses (resolved, so port 0 shows the
// port the system chose) once Run has started them.
func (b *Broker) Addrs() []string {
	var out []string
	for _, id := range []string{"tcp", "tls"} {
		if l, ok := b.srv.Listeners.Get(id); ok {
			out = append(out, l.Address())
		}
	}
	return out
}

// Run serves until ctx ends, with a retained "online" status while it
// does and "offline" after.
func (b *Broker) Run(ctx context.Context) error {
	if err := b.srv.Serve(); err != nil {
		return fmt.Errorf("embedded MQTT broker: %w", err)
	}
	b.log.Info("embedded MQTT broker listening", "addr", b.Addrs())
	_ = b.Publish(b.statusTopic, []byte("online"), 1, true, nil)
	<-ctx.Done()
	_ = b.Publish(b.statusTopic, []byte("offline"), 1, true, nil)
	b.connMu.Lock()
	b.connMu.Unlock() //nolint:staticcheck // see connMu
	err := b.srv.Close()
	b.hook.closeAll()
	return err
}

// Publish sends a message from emberd to the broker's subscribers. With
// correlation data it is an MQTT 5 reply.
func (b *Broker) Publish(t string, payload []byte, qos byte, retain bool, correlation []byte) error {
	pk := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos, Retain: retain},
		TopicName:   t,
		Payload:     payload,
		PacketID:    uint16(qos),
	}
	pk.Properties.CorrelationData = correlation
	return b.srv.InjectPacket(b.self, pk)
}

// ingestHook hands messages to the Ingester and acknowledges each only
// once its jobs are committed.
//
// A connection's QoS 0 and 1 messages are pipelined: the hook queues a
// message's writes for the group commit and returns at once, so the
// broker reads the connection's next message while the last is being
// committed, and the connection's acker sends the PUBACKs (and passes
// the messages on to the broker's subscribers) in arrival order as the
// commits land. A publisher with 16 messages in flight then puts 16 in a
// commit, not one. QoS 2 keeps the broker's own synchronous path.
type ingestHook struct {
	mochi.HookBase
	b *Broker

	mu     sync.Mutex
	ackers map[*mochi.Client]*acker
	closed bool
	wg     sync.WaitGroup // the ackers' goroutines
}

// ackWindow bounds one connection's messages queued but not yet
// acknowledged; past it the connection waits (backpressure).
const ackWindow = 256

func (h *ingestHook) ID() string { return "ember-ingest" }

func (h *ingestHook) Provides(k byte) bool { return k == mochi.OnPublish || k == mochi.OnDisconnect }

func (h *ingestHook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline || !h.b.in.Wants(pk.TopicName) {
		return pk, nil
	}
	msg := pipeline.Message{
		Broker: "embedded", Topic: pk.TopicName, Payload: pk.Payload, QoS: pk.FixedHeader.Qos,
		Dup: pk.FixedHeader.Dup, Client: cl.ID, PacketID: pk.PacketID,
		ResponseTopic: pk.Properties.ResponseTopic, CorrelationData: pk.Properties.CorrelationData,
		MayPublish: func(t string) bool { return h.b.auth.mayPublish(cl, t) },
		Received:   time.Now(),
	}
	wait := h.b.in.HandleAsync(context.Background(), msg, func(t string, payload []byte) {
		_ = h.b.Publish(t, payload, 0, false, nil)
	})
	if pk.FixedHeader.Qos <= 1 {
		if a := h.ackerOf(cl); a != nil && a.send(pending{pk: pk, wait: wait}) {
			return pk, packets.ErrRejectPacket // the acker acknowledges and passes it on
		}
		// The broker is closing: the message stays unacknowledged, and a
		// redelivery is recognised.
		_ = wait()
		return pk, packets.ErrRejectPacket
	}
	if err := wait(); err != nil {
		return h.refused(cl, pk, err)
	}
	return pk, nil
}

// refused handles a QoS 2 message that could not be committed: an MQTT 5
// client gets "quota exceeded"; an MQTT 3.1.1 client, which has no
// negative acknowledgement, is disconnected, so it resends once
// reconnected.
func (h *ingestHook) refused(cl *mochi.Client, pk packets.Packet, err error) (packets.Packet, error) {
	h.logRefused(cl, pk, err)
	if cl.Properties.ProtocolVersion == 5 {
		return pk, packets.ErrQuotaExceeded
	}
	go h.b.srv.DisconnectClient(cl, packets.ErrServerBusy)
	return pk, packets.ErrRejectPacket
}

func (h *ingestHook) logRefused(cl *mochi.Client, pk packets.Packet, err error) {
	h.b.log.Error("message not accepted; not acknowledged", "topic", pk.TopicName, "client", cl.ID,
		"disk_full", errors.Is(err, store.ErrDiskFull), "err", err)
}

// OnDisconnect ends the connection's acker once it has settled what was
// queued.
func (h *ingestHook) OnDisconnect(cl *mochi.Client, _ error, _ bool) {
	h.mu.Lock()
	a := h.ackers[cl]
	delete(h.ackers, cl)
	h.mu.Unlock()
	if a != nil {
		a.close()
	}
}

// ackerOf returns cl's acker, starting it on the connection's first
// message; nil once the broker is closing.
func (h *ingestHook) ackerOf(cl *mochi.Client) *acker {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	if a := h.ackers[cl]; a != nil {
		return a
	}
	if h.ackers == nil {
		h.ackers = map[*mochi.Client]*acker{}
	}
	// The acker passes messages on as an inline twin of the connection
	// (same client id), so subscribers' No Local still recognises them.
	twin := h.b.srv.NewClient(nil, "local", cl.ID, true)
	twin.Properties.ProtocolVersion = 5
	a := &acker{ch: make(chan pending, ackWindow), twin: twin}
	h.ackers[cl] = a
	h.wg.Go(func() { h.ack(cl, a) })
	return a
}

// closeAll ends every acker and waits for them; the broker has stopped
// reading.
func (h *ingestHook) closeAll() {
	h.mu.Lock()
	h.closed = true
	ackers := h.ackers
	h.ackers = nil
	h.mu.Unlock()
	for _, a := range ackers {
		a.close()
	}
	h.wg.Wait()
}

// ack settles cl's messages in arrival order: a committed one is
// acknowledged (QoS 1) and passed on to the broker's subscribers, as the
// broker would have done itself; one that could not be committed is
// refused as refused does, and an MQTT 3.1.1 connection's later messages
// are then left unacknowledged, so they come back in order.
func (h *ingestHook) ack(cl *mochi.Client, a *acker) {
	failed := false
	for p := range a.ch {
		err := p.wait()
		switch {
		case failed:
		case err != nil:
			h.logRefused(cl, p.pk, err)
			if p.pk.FixedHeader.Qos == 0 {
				continue
			}
			if cl.Properties.ProtocolVersion == 5 {
				_ = cl.WritePacket(puback(p.pk.PacketID, packets.ErrQuotaExceeded))
				continue
			}
			failed = true
			go h.b.srv.DisconnectClient(cl, packets.ErrServerBusy)
		default:
			if p.pk.FixedHeader.Qos == 1 {
				_ = cl.WritePacket(puback(p.pk.PacketID, packets.CodeSuccess))
			}
			fwd := p.pk
			fwd.PacketID = uint16(fwd.FixedHeader.Qos) // the inline client's, as Publish sets it
			fwd.FixedHeader.Dup = false
			_ = h.b.srv.InjectPacket(a.twin, fwd)
		}
	}
}

func puback(id uint16, code packets.Code) packets.Packet {
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: id, ReasonCode: code.Code}
	if code.Code >= packets.ErrUnspecifiedError.Code {
		pk.Properties.ReasonString = code.Reason
	}
	return pk
}

// pending is a message whose writes are queued for the group commit.
type pending struct {
	pk   packets.Packet
	wait func() error
}

// acker holds one connection's pending messages in arrival order.
type acker struct {
	mu     sync.Mutex // held while sending, so close never races a send
	closed bool
	ch     chan pending
	twin   *mochi.Client
}

// send queues p, waiting while the window is full; false once closed.
func (a *acker) send(p pending) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return false
	}
	a.ch <- p
	return true
}

func (a *acker) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.closed {
		a.closed = true
		close(a.ch)
	}
}

// minLevel drops records below a level.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(a), h.min}
}
func (h minLevel) WithGroup(n string) slog.Handler { return minLevel{h.Handler.WithGroup(n), h.min} }
