package sparkplug_test

import (
	"errors"
	"runtime"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/ember-edge/ember/daemon/sparkplug"
	sparkplugb "github.com/ember-edge/ember/protos/sparkplug/b/v1"
)

// sentinels are the errors every Decode error must wrap one of.
var sentinels = []error{
	sparkplug.ErrInvalidTopic, sparkplug.ErrMalformed, sparkplug.ErrTooLarge,
	sparkplug.ErrInvalidPayload, sparkplug.ErrNoBirth, sparkplug.ErrOffline,
	sparkplug.ErrUnknownAlias, sparkplug.ErrUnknownMetric,
}

// metricSentinels are the errors every Metric.Err must wrap one of.
var metricSentinels = []error{sparkplug.ErrInvalidValue, sparkplug.ErrUnsupportedType, sparkplug.ErrUnknownMetric}

func wrapsOneOf(err error, sentinels []error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// Topics of the edge node "E1" of group "G" and its devices.
const (
	nbirth = "spBv1.0/G/NBIRTH/E1"
	ndeath = "spBv1.0/G/NDEATH/E1"
	ndata  = "spBv1.0/G/NDATA/E1"
	ncmd   = "spBv1.0/G/NCMD/E1"
)

func dbirth(dev string) string { return "spBv1.0/G/DBIRTH/E1/" + dev }
func ddeath(dev string) string { return "spBv1.0/G/DDEATH/E1/" + dev }
func ddata(dev string) string  { return "spBv1.0/G/DDATA/E1/" + dev }

// baseTime is the payload timestamp of test messages: 2024-05-01T00:00:00Z.
const baseTime = 1714521600000

// mo sets one field of a test metric.
type mo func(*sparkplugb.Payload_Metric)

func metric(opts ...mo) *sparkplugb.Payload_Metric {
	m := new(sparkplugb.Payload_Metric)
	for _, o := range opts {
		o(m)
	}
	return m
}

func name(s string) mo  { return func(m *sparkplugb.Payload_Metric) { m.Name = proto.String(s) } }
func alias(a uint64) mo { return func(m *sparkplugb.Payload_Metric) { m.Alias = proto.Uint64(a) } }
func dtype(t sparkplug.DataType) mo {
	return func(m *sparkplugb.Payload_Metric) { m.Datatype = proto.Uint32(uint32(t)) }
}
func stamp(ms uint64) mo {
	return func(m *sparkplugb.Payload_Metric) { m.Timestamp = proto.Uint64(ms) }
}
func null() mo       { return func(m *sparkplugb.Payload_Metric) { m.IsNull = proto.Bool(true) } }
func historical() mo { return func(m *sparkplugb.Payload_Metric) { m.IsHistorical = proto.Bool(true) } }
func intv(v uint32) mo {
	return func(m *sparkplugb.Payload_Metric) { m.Value = &sparkplugb.Payload_Metric_IntValue{IntValue: v} }
}
func longv(v uint64) mo {
	return func(m *sparkplugb.Payload_Metric) { m.Value = &sparkplugb.Payload_Metric_LongValue{LongValue: v} }
}
func floatv(v float32) mo {
	return func(m *sparkplugb.Payload_Metric) { m.Value = &sparkplugb.Payload_Metric_FloatValue{FloatValue: v} }
}
func doublev(v float64) mo {
	return func(m *sparkplugb.Payload_Metric) { m.Value = &sparkplugb.Payload_Metric_DoubleValue{DoubleValue: v} }
}
func boolv(v bool) mo {
	return func(m *sparkplugb.Payload_Metric) { m.Value = &sparkplugb.Payload_Metric_BooleanValue{BooleanValue: v} }
}
func strv(v string) mo {
	return func(m *sparkplugb.Payload_Metric) { m.Value = &sparkplugb.Payload_Metric_StringValue{StringValue: v} }
}
func bytesv(v []byte) mo {
	return func(m *sparkplugb.Payload_Metric) { m.Value = &sparkplugb.Payload_Metric_BytesValue{BytesValue: v} }
}
func datasetv(v *sparkplugb.Payload_DataSet) mo {
	return func(m *sparkplugb.Payload_Metric) { m.Value = &sparkplugb.Payload_Metric_DatasetValue{DatasetValue: v} }
}
func templatev(v *sparkplugb.Payload_Template) mo {
	return func(m *sparkplugb.Payload_Metric) {
		m.Value = &sparkplugb.Payload_Metric_TemplateValue{TemplateValue: v}
	}
}
func extensionv() mo {
	return func(m *sparkplugb.Payload_Metric) {
		m.Value = &sparkplugb.Payload_Metric_ExtensionValue{ExtensionValue: &sparkplugb.Payload_Metric_MetricValueExtension{}}
	}
}

// payload returns a payload with seq (none if negative) and metrics.
func payload(seq int, metrics ...*sparkplugb.Payload_Metric) *sparkplugb.Payload {
	p := &sparkplugb.Payload{Timestamp: proto.Uint64(baseTime), Metrics: metrics}
	if seq >= 0 {
		p.Seq = proto.Uint64(uint64(seq))
	}
	return p
}

// bdSeq returns the bdSeq metric of an NBIRTH or NDEATH.
func bdSeq(v uint64) *sparkplugb.Payload_Metric {
	return metric(name("bdSeq"), dtype(sparkplug.TypeInt64), longv(v))
}

// nodeBirth returns an NBIRTH payload with bdSeq and three aliased
// metrics: "Temperature" (alias 1, Float), "Running" (alias 2, Boolean)
// and "Offset" (alias 3, Int8).
func nodeBirth(seq int, bd uint64) *sparkplugb.Payload {
	return payload(seq,
		bdSeq(bd),
		metric(name("Node Control/Rebirth"), dtype(sparkplug.TypeBoolean), boolv(false)),
		metric(name("Temperature"), alias(1), dtype(sparkplug.TypeFloat), floatv(20.5)),
		metric(name("Running"), alias(2), dtype(sparkplug.TypeBoolean), boolv(true)),
		metric(name("Offset"), alias(3), dtype(sparkplug.TypeInt8), intv(0xFE)),
	)
}

// nodeData returns an NDATA payload that sends Temperature and Offset by
// alias alone, without their datatypes, as Ignition does.
func nodeData(seq int) *sparkplugb.Payload {
	return payload(seq,
		metric(alias(1), stamp(baseTime+1), floatv(21.25)),
		metric(alias(3), intv(0xFFFFFFF6)),
	)
}

func marshal(t testing.TB, p *sparkplugb.Payload) []byte {
	t.Helper()
	b, err := proto.Marshal(p)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return b
}

func newDecoder(t testing.TB, opts sparkplug.Options) *sparkplug.Decoder {
	t.Helper()
	d, err := sparkplug.NewDecoder(opts)
	if err != nil {
		t.Fatalf("NewDecoder: %v", err)
	}
	return d
}

// mustDecode decodes p on topic and fails the test on error.
func mustDecode(t testing.TB, d *sparkplug.Decoder, topic string, p *sparkplugb.Payload) *sparkplug.Message {
	t.Helper()
	msg, err := d.Decode(topic, marshal(t, p))
	if err != nil {
		t.Fatalf("Decode(%s): %v", topic, err)
	}
	return msg
}

// allocatedBytes returns the bytes of heap fn allocates, counted exactly
// by ReadMemStats (which stops the world).
func allocatedBytes(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
