package sparkplug_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/ember-edge/ember/daemon/sparkplug"
	sparkplugb "github.com/ember-edge/ember/protos/sparkplug/b/v1"
)

// Wire-format builders for payloads the generated code cannot produce.

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func tag(num protowire.Number, typ protowire.Type) []byte { return protowire.AppendTag(nil, num, typ) }

func varintField(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(tag(num, protowire.VarintType), v)
}

func bytesField(num protowire.Number, body ...[]byte) []byte {
	return protowire.AppendBytes(tag(num, protowire.BytesType), cat(body...))
}

// Field numbers of the schema, for readability.
const (
	payloadMetrics     = 2
	payloadSeq         = 3
	metricName         = 1
	metricDatatype     = 4
	metricIntValue     = 10
	metricFloatValue   = 12
	metricDoubleValue  = 13
	metricDataSetValue = 17
	metricTemplate     = 18
	dataSetColumns     = 2
	dataSetTypes       = 3
	dataSetRows        = 4
	templateMetrics    = 2
)

// wireMetric is a Boolean metric named n, built by hand.
func wireMetric(n string) []byte {
	return bytesField(payloadMetrics,
		bytesField(metricName, []byte(n)),
		varintField(metricDatatype, uint64(sparkplug.TypeBoolean)),
		varintField(14, 1))
}

// nestedTemplates returns a metric holding a template holding a metric
// holding a template, depth times over.
func nestedTemplates(depth int) []byte {
	inner := cat(bytesField(metricName, []byte("leaf")), varintField(metricDatatype, uint64(sparkplug.TypeInt32)), varintField(metricIntValue, 1))
	for range depth {
		inner = cat(
			bytesField(metricName, []byte("t")),
			varintField(metricDatatype, uint64(sparkplug.TypeTemplate)),
			bytesField(metricTemplate, bytesField(templateMetrics, inner)))
	}
	return bytesField(payloadMetrics, inner)
}

// TestMalformedPayloads feeds hand-built wire bytes, good and bad, to an
// NBIRTH, which needs no earlier state.
func TestMalformedPayloads(t *testing.T) {
	good, err := proto.Marshal(nodeBirth(0, 1))
	if err != nil {
		t.Fatal(err)
	}
	packedDataSet := bytesField(payloadMetrics,
		bytesField(metricName, []byte("table")),
		varintField(metricDatatype, uint64(sparkplug.TypeDataSet)),
		bytesField(metricDataSetValue,
			bytesField(dataSetColumns, []byte("a")),
			bytesField(dataSetColumns, []byte("b")),
			bytesField(dataSetTypes, []byte{byte(sparkplug.TypeInt32), byte(sparkplug.TypeBoolean)})))
	for _, tc := range []struct {
		name string
		data []byte
		opts sparkplug.Options
		err  error  // nil for a payload that must decode
		msg  string // substring of the error
	}{
		{name: "good birth", data: good},
		{name: "empty payload", data: nil},
		{name: "hand-built metric", data: wireMetric("ok")},
		{name: "unknown payload field", data: cat(good, varintField(99, 7))},
		{name: "unknown metric field", data: bytesField(payloadMetrics, bytesField(metricName, []byte("m")), varintField(metricDatatype, 3), varintField(metricIntValue, 1), bytesField(25, []byte("future")))},
		{name: "payload extension", data: cat(good, bytesField(6, []byte("vendor")))},
		{name: "packed data set types", data: packedDataSet},
		{name: "templates nested to the limit", data: nestedTemplates(15)},

		{name: "truncated by a byte", data: good[:len(good)-1], err: sparkplug.ErrMalformed},
		{name: "truncated in half", data: good[:len(good)/2], err: sparkplug.ErrMalformed},
		{name: "lone tag", data: tag(payloadMetrics, protowire.BytesType), err: sparkplug.ErrMalformed},
		{name: "length past the end", data: cat(tag(payloadMetrics, protowire.BytesType), protowire.AppendVarint(nil, 1000), []byte{1, 2, 3}), err: sparkplug.ErrMalformed},
		{name: "huge length", data: cat(tag(payloadMetrics, protowire.BytesType), protowire.AppendVarint(nil, 1<<62)), err: sparkplug.ErrMalformed},
		{name: "huge string length in a metric", data: bytesField(payloadMetrics, tag(metricName, protowire.BytesType), protowire.AppendVarint(nil, 1<<40)), err: sparkplug.ErrMalformed, msg: "metrics[0]: name"},
		{name: "varint overflow", data: cat(tag(1, protowire.VarintType), bytes.Repeat([]byte{0xFF}, 11)), err: sparkplug.ErrMalformed},
		{name: "field number 0", data: []byte{0x00, 0x01}, err: sparkplug.ErrMalformed, msg: "bad field tag"},
		{name: "metrics as varint", data: varintField(payloadMetrics, 1), err: sparkplug.ErrMalformed, msg: "metrics: wire type 0, want 2"},
		{name: "seq as bytes", data: bytesField(payloadSeq, []byte{1}), err: sparkplug.ErrMalformed, msg: "seq: wire type 2, want 0"},
		{name: "metric name as varint", data: cat(wireMetric("a"), bytesField(payloadMetrics, varintField(metricName, 1))), err: sparkplug.ErrMalformed, msg: "metrics[1]: name: wire type 0, want 2"},
		{name: "float_value as varint", data: bytesField(payloadMetrics, varintField(metricFloatValue, 1)), err: sparkplug.ErrMalformed, msg: "float_value: wire type 0, want 5"},
		{name: "double_value as fixed32", data: bytesField(payloadMetrics, protowire.AppendFixed32(tag(metricDoubleValue, protowire.Fixed32Type), 1)), err: sparkplug.ErrMalformed, msg: "double_value: wire type 5, want 1"},
		{name: "fixed32 cut short", data: bytesField(payloadMetrics, tag(metricFloatValue, protowire.Fixed32Type), []byte{1, 2}), err: sparkplug.ErrMalformed},
		{name: "group in a known field", data: cat(tag(payloadMetrics, protowire.StartGroupType), tag(payloadMetrics, protowire.EndGroupType)), err: sparkplug.ErrMalformed, msg: "group wire type"},
		{name: "group in an unknown field", data: cat(tag(40, protowire.StartGroupType), tag(40, protowire.EndGroupType)), err: sparkplug.ErrMalformed, msg: "field 40: group wire type"},
		{name: "stray end group", data: tag(40, protowire.EndGroupType), err: sparkplug.ErrMalformed},
		{name: "bad packed varint", data: bytesField(payloadMetrics, bytesField(metricDataSetValue, bytesField(dataSetTypes, []byte{0x80}))), err: sparkplug.ErrMalformed, msg: "metrics[0]: dataset_value: types: packed value"},
		{name: "row past its data set", data: bytesField(payloadMetrics, bytesField(metricDataSetValue, tag(dataSetRows, protowire.BytesType), []byte{50})), err: sparkplug.ErrMalformed, msg: "dataset_value: rows"},
		{name: "seq over 255", data: varintField(payloadSeq, 256), err: sparkplug.ErrInvalidPayload, msg: "seq 256"},
		{name: "timestamp out of range", data: varintField(1, 1<<63), err: sparkplug.ErrInvalidPayload, msg: "timestamp"},

		{name: "payload over the size limit", data: good, opts: sparkplug.Options{MaxPayloadBytes: len(good) - 1}, err: sparkplug.ErrTooLarge, msg: "more than"},
		{name: "payload at the size limit", data: good, opts: sparkplug.Options{MaxPayloadBytes: len(good)}},
		{name: "too many metrics", data: good, opts: sparkplug.Options{MaxMetrics: 4}, err: sparkplug.ErrTooLarge, msg: "more than 4 metrics"},
		{name: "template members count as metrics", data: nestedTemplates(4), opts: sparkplug.Options{MaxMetrics: 4}, err: sparkplug.ErrTooLarge, msg: "metrics"},
		{name: "too many fields", data: good, opts: sparkplug.Options{MaxFields: 10}, err: sparkplug.ErrTooLarge, msg: "more than 10 protobuf fields"},
		{name: "templates nested too deep", data: nestedTemplates(16), err: sparkplug.ErrTooLarge, msg: "nested more than 32"},
		{name: "deep nesting with a low limit", data: nestedTemplates(2), opts: sparkplug.Options{MaxDepth: 3}, err: sparkplug.ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDecoder(t, tc.opts)
			msg, err := d.Decode(nbirth, tc.data)
			if tc.err == nil {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if err := msg.MetricErrors(); err != nil {
					t.Errorf("metric errors: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Decode = %v; want %v containing %q", err, tc.err, tc.msg)
			}
		})
	}
}

// TestHostilePayloadIsCheap checks that a payload over a limit is refused
// before it is decoded: a megabyte of empty metrics, each two bytes on the
// wire and a hundred-odd bytes as a Go struct, costs next to nothing.
func TestHostilePayloadIsCheap(t *testing.T) {
	data := bytes.Repeat(bytesField(payloadMetrics), 1<<19)
	d := newDecoder(t, sparkplug.Options{})
	var err error
	allocated := allocatedBytes(func() { _, err = d.Decode(nbirth, data) })
	if !errors.Is(err, sparkplug.ErrTooLarge) {
		t.Fatalf("Decode: %v, want ErrTooLarge", err)
	}
	if allocated > 64<<10 {
		t.Errorf("refusing a %d-byte payload allocated %d bytes", len(data), allocated)
	}
}

// TestPackedTypesDecode checks the packed form of DataSet.types, which
// proto2 publishers may send though the schema does not declare it.
func TestPackedTypesDecode(t *testing.T) {
	data := bytesField(payloadMetrics,
		bytesField(metricName, []byte("table")),
		varintField(metricDatatype, uint64(sparkplug.TypeDataSet)),
		bytesField(metricDataSetValue,
			bytesField(dataSetColumns, []byte("n")),
			bytesField(dataSetTypes, []byte{byte(sparkplug.TypeInt32)}),
			bytesField(dataSetRows, bytesField(1, varintField(1, 5)))))
	msg, err := newDecoder(t, sparkplug.Options{}).Decode(nbirth, data)
	if err != nil {
		t.Fatal(err)
	}
	ds, _ := msg.Fields()["table"].(sparkplug.DataSet)
	if len(ds.Rows) != 1 || ds.Rows[0][0] != int64(5) || ds.Records()[0]["n"] != int64(5) {
		t.Errorf("table = %+v", msg.Fields()["table"])
	}
	var p sparkplugb.Payload
	if err := proto.Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
}
