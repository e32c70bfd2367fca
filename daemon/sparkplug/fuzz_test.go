package sparkplug_test

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/ember-edge/ember/daemon/sparkplug"
	sparkplugb "github.com/ember-edge/ember/protos/sparkplug/b/v1"
)

// fuzzOptions are small limits, so that the fuzzer reaches them.
var fuzzOptions = sparkplug.Options{
	MaxPayloadBytes:   64 << 10,
	MaxMetrics:        256,
	MaxFields:         4096,
	MaxDepth:          16,
	MaxNodes:          4,
	MaxDevicesPerNode: 4,
	MaxStateBytes:     32 << 10,
}

// fuzzAllocationLimit is the most that decoding a message of n bytes,
// topic and payload, may allocate: each field costs at most a few hundred
// bytes as a generated struct plus its decoded Metric, and takes at least
// two bytes on the wire.
func fuzzAllocationLimit(n int) uint64 { return 64<<10 + 512*uint64(n) }

// fuzzDecoder returns a Decoder that holds a session of edge node E1 with
// device D1, as a running pipeline would, so that data by alias and
// deaths reach the stateful paths.
func fuzzDecoder(t *testing.T) *sparkplug.Decoder {
	d := newDecoder(t, fuzzOptions)
	mustDecode(t, d, nbirth, nodeBirth(0, 1))
	mustDecode(t, d, dbirth("D1"), fuzzDeviceBirth())
	return d
}

func fuzzDeviceBirth() *sparkplugb.Payload {
	return payload(1,
		metric(name("Pressure"), alias(10), dtype(sparkplug.TypeDouble), doublev(1.5)),
		metric(name("Serial"), alias(11), dtype(sparkplug.TypeString), strv("SN-1")),
		metric(name("Samples"), alias(12), dtype(sparkplug.TypeInt16Array), bytesv(le(int16(1), int16(-1)))),
		metric(name("Table"), alias(13), dtype(sparkplug.TypeDataSet), datasetv(&sparkplugb.Payload_DataSet{
			NumOfColumns: proto.Uint64(1), Columns: []string{"v"}, Types: []uint32{uint32(sparkplug.TypeUInt64)},
			Rows: []*sparkplugb.Payload_DataSet_Row{{Elements: []*sparkplugb.Payload_DataSet_DataSetValue{
				{Value: &sparkplugb.Payload_DataSet_DataSetValue_LongValue{LongValue: 9}},
			}}},
		})),
		metric(name("Motor"), alias(14), dtype(sparkplug.TypeTemplate), templatev(&sparkplugb.Payload_Template{
			TemplateRef: proto.String("Motor"),
			Metrics:     []*sparkplugb.Payload_Metric{metric(name("RPM"), dtype(sparkplug.TypeUInt16), intv(1200))},
		})),
	)
}

// FuzzDecode sends two messages, arbitrary topics and payloads, through a
// Decoder that holds a live session. Decode must never panic, must fail
// only with a sentinel error and without a message, must allocate in
// proportion to the payload, and must keep its state within its limits;
// what it accepts must be consistent with its own documentation.
func FuzzDecode(f *testing.F) {
	for _, s := range []struct {
		topic1 string
		p1     *sparkplugb.Payload
		topic2 string
		p2     *sparkplugb.Payload
	}{
		{ndata, nodeData(2), ddata("D1"), payload(3, metric(alias(10), doublev(2)), metric(alias(12), bytesv(le(int16(5)))))},
		{ddata("D1"), payload(2, metric(alias(13), datasetv(&sparkplugb.Payload_DataSet{Columns: []string{"v"}, Types: []uint32{8}}))), ddeath("D1"), payload(3)},
		{ddata("D1"), payload(2, metric(alias(14), templatev(&sparkplugb.Payload_Template{Metrics: []*sparkplugb.Payload_Metric{metric(name("RPM"), intv(5))}}))), ndeath, payload(-1, bdSeq(1))},
		{ndeath, payload(-1, bdSeq(0)), ndata, nodeData(2)},
		{ndeath, payload(-1, bdSeq(1)), ndata, nodeData(2)},
		{nbirth, nodeBirth(9, 2), ndata, nodeData(10)},
		{dbirth("D2"), fuzzDeviceBirth(), ddata("D2"), payload(3, metric(alias(11), strv("SN-2")))},
		{ncmd, payload(-1, metric(name(sparkplug.RebirthMetric), dtype(sparkplug.TypeBoolean), boolv(true))), "spBv1.0/G/DCMD/E1/D1", payload(-1, metric(alias(10), doublev(0)))},
		{ndata, payload(7, metric(alias(99), intv(1))), ndata, payload(300)},
		{"spBv1.0/G2/NBIRTH/E9", payload(0, metric(name("a"), alias(1), dtype(sparkplug.TypeBooleanArray), bytesv([]byte{3, 0, 0, 0, 0xA0}))), "spBv1.0/G2/NDATA/E9", payload(1, metric(alias(1), bytesv([]byte{1, 0, 0, 0, 0x80})))},
	} {
		p1, err := proto.Marshal(s.p1)
		if err != nil {
			f.Fatal(err)
		}
		p2, err := proto.Marshal(s.p2)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s.topic1, p1, s.topic2, p2)
	}
	f.Add("spBv1.0/STATE/scada", []byte(`{"online":true,"timestamp":1668114759262}`), ndata, []byte{})
	f.Add(ndata, nestedTemplates(3), "spAv1.0/G/NDATA/E1", []byte{0x12, 0x00})
	f.Add(nbirth, []byte{0x12, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F}, ddata("D1"), []byte{0x10, 0x01})

	f.Fuzz(func(t *testing.T, topic1 string, p1 []byte, topic2 string, p2 []byte) {
		d := fuzzDecoder(t)
		for _, m := range []struct {
			topic   string
			payload []byte
		}{{topic1, p1}, {topic2, p2}} {
			var msg *sparkplug.Message
			var err error
			allocated := allocatedBytes(func() { msg, err = d.Decode(m.topic, m.payload) })
			if limit := fuzzAllocationLimit(len(m.topic) + len(m.payload)); allocated > limit {
				t.Fatalf("decoding a %d-byte topic and %d-byte payload allocated %d bytes, more than %d", len(m.topic), len(m.payload), allocated, limit)
			}
			if err != nil {
				if !wrapsOneOf(err, sentinels) {
					t.Fatalf("error %q wraps no sentinel", err)
				}
				if msg != nil {
					t.Fatalf("Decode returned a message with error %v", err)
				}
			} else {
				checkMessage(t, m.topic, msg)
			}
			s := d.Stats()
			if s.Nodes > fuzzOptions.MaxNodes || s.StateBytes > fuzzOptions.MaxStateBytes || s.Devices > fuzzOptions.MaxNodes*fuzzOptions.MaxDevicesPerNode {
				t.Fatalf("state over its limits: %+v", s)
			}
		}
	})
}

// checkMessage checks that an accepted message is what the package
// documents.
func checkMessage(t *testing.T, topic string, msg *sparkplug.Message) {
	t.Helper()
	if msg.Topic.String() != topic || msg.Type != msg.Topic.Type {
		t.Fatalf("message of %q has topic %q, type %v", topic, msg.Topic.String(), msg.Type)
	}
	if (msg.Type == sparkplug.STATE) != (msg.Host != nil) {
		t.Fatalf("%v message with Host %+v", msg.Type, msg.Host)
	}
	if msg.Gap != nil && (msg.Gap.Missed() < 1 || msg.Gap.Missed() > 255) {
		t.Fatalf("Gap %+v", msg.Gap)
	}
	checkMetrics(t, msg.Metrics)
	_ = msg.Fields()
	_ = msg.MetricErrors()
}

func checkMetrics(t *testing.T, metrics []sparkplug.Metric) {
	t.Helper()
	for _, m := range metrics {
		switch {
		case m.Err != nil:
			if !wrapsOneOf(m.Err, metricSentinels) || m.Value != nil {
				t.Fatalf("metric %q: Err %q, Value %#v", m.Name, m.Err, m.Value)
			}
		case m.IsNull:
			if m.Value != nil {
				t.Fatalf("null metric %q has Value %#v", m.Name, m.Value)
			}
		default:
			got := strings.ReplaceAll(fmt.Sprintf("%T", m.Value), "uint8", "byte")
			if want := m.Type.GoType(); got != want {
				t.Fatalf("metric %q of type %v has a %s value, GoType says %s", m.Name, m.Type, got, want)
			}
			if tpl, ok := m.Value.(sparkplug.Template); ok {
				checkMetrics(t, tpl.Metrics)
				_ = tpl.Fields()
			}
			if ds, ok := m.Value.(sparkplug.DataSet); ok {
				for _, row := range ds.Rows {
					if len(row) != len(ds.Columns) {
						t.Fatalf("DataSet row of %d values for %d columns", len(row), len(ds.Columns))
					}
				}
				_ = ds.Records()
			}
		}
	}
}
