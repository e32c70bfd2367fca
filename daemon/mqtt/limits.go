package mqtt

import (
	"bytes"
	"sync"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/ember-edge/ember/daemon/config"
)

// capabilities are mochi's limits from the config. mochi's defaults
// leave clients, session lifetimes (never expiring), stored in-flight
// messages (8192 per client), topic aliases and packet sizes unbounded
// or large; the retained messages and sessions mochi does not bound are
// limitHook's.
func capabilities(cfg config.Embedded) *mochi.Capabilities {
	l := cfg.Limits
	caps := mochi.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = uint32(cfg.MaxPayload) + 1024 // headers on top of the payload
	caps.MaximumClients = int64(l.MaxClients)
	caps.MaximumSessionExpiryInterval = uint32(l.SessionExpiry.D().Seconds())
	caps.MaximumInflight = uint16(l.MaxInflight)
	caps.MaximumClientWritesPending = int32(l.MaxQueued)
	caps.TopicAliasMaximum = uint16(l.TopicAliases)
	return caps
}

// ErrRetainedFull refuses a retained message past
// mqtt.embedded.limits.max_retained or max_retained_bytes.
var ErrRetainedFull = packets.Code{Code: packets.ErrQuotaExceeded.Code,
	Reason: "the broker holds no more retained messages (mqtt.embedded.limits.max_retained / max_retained_bytes)"}

// limitHook bounds what mochi does not: the sessions kept (connected or
// not) and the retained messages, by count and payload bytes.
//
// Retained messages are counted as they are accepted, not as mochi
// stores them: a message the ingest path commits first is stored only
// later, and a burst must not pass the check before any of it is
// counted.
type limitHook struct {
	mochi.HookBase
	srv *mochi.Server
	lim config.BrokerLimits

	mu       sync.Mutex
	retained map[string]int // topic → payload bytes
	bytes    int64
}

func newLimitHook(srv *mochi.Server, lim config.BrokerLimits) *limitHook {
	return &limitHook{srv: srv, lim: lim, retained: map[string]int{}}
}

func (h *limitHook) ID() string { return "ember-limits" }

func (h *limitHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mochi.OnConnect, mochi.OnPublish, mochi.OnRetainedExpired}, []byte{b})
}

// OnConnect refuses a client that would start a session past
// max_sessions; taking over an existing session is always allowed.
func (h *limitHook) OnConnect(cl *mochi.Client, pk packets.Packet) error {
	if _, ok := h.srv.Clients.Get(cl.ID); ok {
		return nil
	}
	sessions := 0
	for _, c := range h.srv.Clients.GetAll() {
		if !c.Net.Inline { // emberd's own clients are no one's session
			sessions++
		}
	}
	if sessions < h.lim.MaxSessions {
		return nil
	}
	return refuseConnect(h.srv, cl, ErrTooManySessions, packets.Err3ServerUnavailable)
}

// OnPublish refuses a retained message that would pass the limits, as
// mochi refuses a publish its ACL denies: an MQTT 5 client gets a
// negative PUBACK, an MQTT 3.1.1 client sending QoS 1 or 2 (which has no
// negative acknowledgement) is disconnected, and QoS 0 is dropped.
// emberd's own messages are counted, never refused.
func (h *limitHook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if !pk.FixedHeader.Retain {
		return pk, nil
	}
	if h.admitRetained(pk.TopicName, len(pk.Payload), cl.Net.Inline) {
		return pk, nil
	}
	switch {
	case pk.FixedHeader.Qos > 0 && cl.Properties.ProtocolVersion == 5:
		return pk, ErrRetainedFull
	case pk.FixedHeader.Qos > 0:
		go h.srv.DisconnectClient(cl, ErrRetainedFull)
	}
	return pk, packets.ErrRejectPacket
}

// admitRetained counts a retained message on topic t (an empty payload
// deletes one), unless it would pass the limits and force is unset.
func (h *limitHook) admitRetained(t string, size int, force bool) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	old, had := h.retained[t]
	if size == 0 {
		if had {
			delete(h.retained, t)
			h.bytes -= int64(old)
		}
		return true
	}
	n, b := len(h.retained), h.bytes-int64(old)+int64(size)
	if !had {
		n++
	}
	if !force && (n > h.lim.MaxRetained || b > int64(h.lim.MaxRetainedBytes)) {
		return false
	}
	h.retained[t] = size
	h.bytes = b
	return true
}

// OnRetainedExpired forgets a retained message mochi dropped as expired.
func (h *limitHook) OnRetainedExpired(t string) { h.admitRetained(t, 0, true) }
