package sparkplug

import (
	"errors"
	"time"
)

// Message is a decoded Sparkplug B message.
type Message struct {
	Topic Topic
	// Type is Topic.Type, repeated for convenience.
	Type MessageType
	// Timestamp is when the message was published; zero if the publisher
	// did not say.
	Timestamp time.Time
	// Seq is the payload's sequence number, 0 to 255, if HasSeq. Every
	// message of an edge node session but NDEATH carries one.
	Seq    uint8
	HasSeq bool
	UUID   string
	// Body is the payload's opaque body, which some publishers send in
	// place of metrics.
	Body    []byte
	Metrics []Metric
	// Gap is set when Seq is not the one after the edge node's previous
	// message: messages were lost (or reordered) between the publisher and
	// ember. The message itself decoded normally; a host that must not
	// miss data requests a rebirth.
	Gap *SeqGap
	// Stale is set on an NDEATH whose bdSeq is not that of the edge
	// node's current birth: the death of an earlier session, delivered
	// late by the broker. The Decoder ignores it, and so should its
	// caller: the edge node is still online.
	Stale bool
	// Host is the host application's state, for STATE messages only.
	Host *HostState
}

// SeqGap describes a break in an edge node's sequence numbers.
type SeqGap struct {
	Expected uint8
	Got      uint8
}

// Missed returns how many messages went missing between the last one and
// this, assuming none were reordered: 1 to 255.
func (g SeqGap) Missed() int { return int(g.Got - g.Expected) }

// Fields maps each metric name to its value, for templates and rules.
// A name that occurs more than once (a historical value next to the
// current one, say) maps to the last current value, or to the last
// historical value if there is no current one. Metrics whose Err is set
// are left out, so a rule sees a missing field rather than a wrong
// value; a null metric maps to nil.
func (m *Message) Fields() map[string]any { return metricList(m.Metrics).fields() }

// Metric returns the metric called name, chosen as Fields chooses, but
// including metrics whose Err is set.
func (m *Message) Metric(name string) (Metric, bool) { return metricList(m.Metrics).lookup(name) }

// MetricErrors joins the Err of every metric, or returns nil if all
// decoded: one error to log per message.
func (m *Message) MetricErrors() error {
	var errs []error
	for _, mt := range m.Metrics {
		if mt.Err != nil {
			errs = append(errs, mt.Err)
		}
	}
	return errors.Join(errs...)
}
