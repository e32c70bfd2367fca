package mqtt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/daemon/pipeline"
	"github.com/ember-edge/ember/daemon/store"
)

// Broker is the embedded MQTT broker.
type Broker struct {
	srv  *mochi.Server
	self *mochi.Client // emberd's own inline client, speaking MQTT 5
	in   *Ingester
	cfg  config.Embedded
	log  *slog.Logger
	addr []string

	statusTopic string
}

// NewBroker builds the embedded broker and opens its listeners.
func NewBroker(cfg config.Embedded, in *Ingester, deviceID string, log *slog.Logger) (*Broker, error) {
	caps := mochi.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = uint32(cfg.MaxPayload) + 1024 // headers on top of the payload
	srv := mochi.New(&mochi.Options{
		Capabilities: caps,
		InlineClient: true,
		// mochi logs every client and lifecycle step at info; keep its
		// warnings and errors only.
		Logger: slog.New(minLevel{log.Handler(), slog.LevelWarn}).With("component", "mqtt-broker"),
	})
	b := &Broker{srv: srv, in: in, cfg: cfg, log: log, statusTopic: StatusTopic(deviceID)}
	b.self = srv.NewClient(nil, "local", "emberd", true)
	b.self.Properties.ProtocolVersion = 5
	users := map[string]config.MQTTUser{}
	for _, u := range cfg.Users {
		users[u.Username] = u
	}
	if err := srv.AddHook(&authHook{users: users}, nil); err != nil {
		return nil, err
	}
	if err := srv.AddHook(&ingestHook{b: b}, nil); err != nil {
		return nil, err
	}
	if cfg.Listen != "" {
		if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: cfg.Listen})); err != nil {
			return nil, fmt.Errorf("mqtt listener %s: %w", cfg.Listen, err)
		}
	}
	if cfg.TLS.Cert != "" {
		tc, err := brokerTLS(cfg.TLS)
		if err != nil {
			return nil, err
		}
		if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "tls", Address: cfg.TLS.Listen, TLSConfig: tc})); err != nil {
			return nil, fmt.Errorf("mqtt TLS listener %s: %w", cfg.TLS.Listen, err)
		}
	}
	return b, nil
}

// StatusTopic is where emberd keeps its retained online/offline status.
func StatusTopic(deviceID string) string { return "ember/v1/" + deviceID + "/status" }

func brokerTLS(c config.BrokerTLS) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
	if err != nil {
		return nil, fmt.Errorf("mqtt TLS certificate: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.ClientCA != "" {
		pem, err := os.ReadFile(c.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("mqtt client CA: %w", err)
		}
		tc.ClientCAs = x509.NewCertPool()
		if !tc.ClientCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt client CA %s holds no PEM certificate", c.ClientCA)
		}
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
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
	return b.srv.Close()
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

// ingestHook hands messages to the Ingester before the broker
// acknowledges them.
type ingestHook struct {
	mochi.HookBase
	b *Broker
}

func (h *ingestHook) ID() string { return "ember-ingest" }

func (h *ingestHook) Provides(k byte) bool { return k == mochi.OnPublish }

// OnPublish runs before the broker sends PUBACK: it returns only once the
// message's jobs are committed. When they cannot be (a full disk), the
// message is refused: an MQTT 5 client gets a PUBACK with "quota
// exceeded"; an MQTT 3.1.1 client, which has no negative acknowledgement,
// gets no PUBACK and is disconnected, so it resends once reconnected.
func (h *ingestHook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline || !h.b.in.Wants(pk.TopicName) {
		return pk, nil
	}
	msg := pipeline.Message{
		Broker: "embedded", Topic: pk.TopicName, Payload: pk.Payload, QoS: pk.FixedHeader.Qos,
		Dup: pk.FixedHeader.Dup, Client: cl.ID, PacketID: pk.PacketID,
		ResponseTopic: pk.Properties.ResponseTopic, CorrelationData: pk.Properties.CorrelationData,
		Received: time.Now(),
	}
	err := h.b.in.Handle(context.Background(), msg, func(t string, payload []byte) {
		_ = h.b.Publish(t, payload, 0, false, nil)
	})
	if err == nil {
		return pk, nil
	}
	full := errors.Is(err, store.ErrDiskFull)
	h.b.log.Error("message not accepted; not acknowledged", "topic", pk.TopicName, "client", cl.ID, "disk_full", full, "err", err)
	if cl.Properties.ProtocolVersion == 5 && pk.FixedHeader.Qos > 0 {
		return pk, packets.ErrQuotaExceeded
	}
	go h.b.srv.DisconnectClient(cl, packets.ErrServerBusy)
	return pk, packets.ErrRejectPacket
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
