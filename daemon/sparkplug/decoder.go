package sparkplug

import (
	"container/list"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/protobuf/proto"

	sparkplugb "github.com/ember-edge/ember/protos/sparkplug/b/v1"
)

// Options bounds what a Decoder accepts and remembers. A zero field takes
// its default; a negative one is an error.
//
// The per-message limits bound the memory one Decode may allocate, to
// about the payload's size plus a few hundred bytes per protobuf field
// (FuzzDecode checks a bound of 512 bytes per payload byte); the state
// limits bound what the Decoder keeps between messages, whatever
// publishers send.
type Options struct {
	// MaxPayloadBytes caps the size of a payload. Default 4 MiB.
	MaxPayloadBytes int
	// MaxMetrics caps the metrics in one payload, template members
	// included. Default 65536.
	MaxMetrics int
	// MaxFields caps the protobuf fields in one payload, at every level of
	// nesting: properties, data set cells, template members. Default
	// 524288.
	MaxFields int
	// MaxDepth caps the nesting of messages in a payload (templates within
	// templates, property sets within property sets). Default 32.
	MaxDepth int

	// MaxNodes caps the edge nodes the Decoder remembers, online or
	// offline. Default 4096.
	MaxNodes int
	// MaxDevicesPerNode caps the devices it remembers per edge node.
	// Default 1024.
	MaxDevicesPerNode int
	// MaxStateBytes caps the Decoder's estimate of the memory its birth
	// certificates take, names included. Default 64 MiB.
	MaxStateBytes int
}

const (
	defaultMaxPayloadBytes   = 4 << 20
	defaultMaxMetrics        = 1 << 16
	defaultMaxFields         = 1 << 19
	defaultMaxDepth          = 32
	defaultMaxNodes          = 4096
	defaultMaxDevicesPerNode = 1024
	defaultMaxStateBytes     = 64 << 20
)

// withDefaults returns o with every zero field set to its default, or an
// error naming every negative one.
func (o Options) withDefaults() (Options, error) {
	var errs []error
	for _, f := range []struct {
		name  string
		value *int
		def   int
	}{
		{"MaxPayloadBytes", &o.MaxPayloadBytes, defaultMaxPayloadBytes},
		{"MaxMetrics", &o.MaxMetrics, defaultMaxMetrics},
		{"MaxFields", &o.MaxFields, defaultMaxFields},
		{"MaxDepth", &o.MaxDepth, defaultMaxDepth},
		{"MaxNodes", &o.MaxNodes, defaultMaxNodes},
		{"MaxDevicesPerNode", &o.MaxDevicesPerNode, defaultMaxDevicesPerNode},
		{"MaxStateBytes", &o.MaxStateBytes, defaultMaxStateBytes},
	} {
		switch {
		case *f.value < 0:
			errs = append(errs, fmt.Errorf("%s is %d, want 0 (default) or more", f.name, *f.value))
		case *f.value == 0:
			*f.value = f.def
		}
	}
	return o, errors.Join(errs...)
}

// Decoder decodes Sparkplug B messages, remembering each edge node's and
// device's birth certificate so that data sent by alias decodes to named
// metrics.
//
// A Decoder is safe for concurrent use. Its sequence number check assumes
// that the messages of one edge node are decoded in the order they
// arrived, which MQTT preserves per topic and a pipeline preserves by
// decoding one edge node's messages from one goroutine; messages of
// different edge nodes may be decoded concurrently in any order.
//
// What a Decoder remembers is bounded by Options. To stay within them it
// forgets whole edge nodes, least recently heard from first, and when one
// edge node alone is too large, that node's least recently heard from
// devices. Data from a forgotten edge node or device then fails with
// ErrNoBirth until it rebirths, as after a restart.
type Decoder struct {
	opts Options

	mu    sync.Mutex
	nodes map[nodeKey]*node
	// lru orders nodes by when a message last concerned them, most recent
	// at the front; its values are *node.
	lru *list.List
	// cost is the sum of every node's cost, against MaxStateBytes.
	cost int
	// tick orders device use within a node.
	tick  uint64
	stats Stats
}

// NewDecoder returns a Decoder with the limits in opts.
func NewDecoder(opts Options) (*Decoder, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("sparkplug: decoder options: %w", err)
	}
	return &Decoder{opts: o, nodes: make(map[nodeKey]*node), lru: list.New()}, nil
}

// Decode decodes the MQTT message that arrived on topic with payload, and
// updates the Decoder's record of edge nodes and devices as the message
// type says: births record aliases, deaths forget them.
//
// It returns an error wrapping ErrInvalidTopic, ErrMalformed, ErrTooLarge
// or ErrInvalidPayload for a message it cannot decode, and one for which
// NeedsRebirth is true when the message depends on a birth certificate
// the Decoder does not hold. Problems with one metric's value do not fail
// the message: they are in that Metric's Err. The Message shares no
// memory with payload.
func (d *Decoder) Decode(topic string, payload []byte) (*Message, error) {
	t, err := ParseTopic(topic)
	if err != nil {
		return nil, err
	}
	msg, err := d.decode(t, payload)
	if err != nil {
		return nil, fmt.Errorf("sparkplug: %s: %w", topic, err)
	}
	return msg, nil
}

func (d *Decoder) decode(t Topic, payload []byte) (*Message, error) {
	if len(payload) > d.opts.MaxPayloadBytes {
		return nil, failf(ErrTooLarge, "payload of %d bytes, more than %d", len(payload), d.opts.MaxPayloadBytes)
	}
	msg := &Message{Topic: t, Type: t.Type}
	if t.Type == STATE {
		host, err := parseHostState(payload)
		if err != nil {
			return nil, err
		}
		msg.Host = host
		return msg, nil
	}
	p, err := d.unmarshal(payload)
	if err != nil {
		return nil, err
	}
	if p.Timestamp != nil {
		if msg.Timestamp, err = millis(p.GetTimestamp()); err != nil {
			return nil, failf(ErrInvalidPayload, "payload timestamp %d out of range", p.GetTimestamp())
		}
	}
	if p.Seq != nil {
		if p.GetSeq() > 255 {
			return nil, failf(ErrInvalidPayload, "seq %d is not 0 to 255", p.GetSeq())
		}
		msg.Seq, msg.HasSeq = uint8(p.GetSeq()), true
	}
	msg.UUID, msg.Body = p.GetUuid(), p.GetBody()

	// A birth's alias table is built before the lock is taken: it is the
	// most work a birth does, and needs no state.
	var birth *aliasTable
	var birthErr error
	if t.Type == NBIRTH || t.Type == DBIRTH {
		birth, birthErr = newAliasTable(p.GetMetrics())
	}
	defs, err := d.apply(t, p, msg, birth, birthErr)
	if err != nil {
		return nil, err
	}
	msg.Metrics = make([]Metric, len(p.GetMetrics()))
	for i, pm := range p.GetMetrics() {
		var def *metricDef
		if defs != nil {
			def = defs[i]
		}
		msg.Metrics[i] = convertMetric(pm, def)
	}
	return msg, nil
}

// unmarshal scans payload against the limits, then decodes it.
func (d *Decoder) unmarshal(payload []byte) (*sparkplugb.Payload, error) {
	s := scanner{limits: &d.opts}
	if err := s.scan(payload, kindPayload, 0); err != nil {
		return nil, err
	}
	p := new(sparkplugb.Payload)
	if err := proto.Unmarshal(payload, p); err != nil {
		return nil, failf(ErrMalformed, "%v", err)
	}
	return p, nil
}
