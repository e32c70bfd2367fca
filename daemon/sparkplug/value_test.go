package sparkplug_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/ember-edge/ember/daemon/sparkplug"
	sparkplugb "github.com/ember-edge/ember/protos/sparkplug/b/v1"
)

// TestDataTypeNumbers checks that DataType mirrors the generated enum,
// which carries the specification's numbers.
func TestDataTypeNumbers(t *testing.T) {
	for i := range int32(35) {
		if got, want := sparkplug.DataType(i).String(), sparkplugb.DataType(i).String(); got != want {
			t.Errorf("DataType(%d) is %q, the schema says %q", i, got, want)
		}
		if i > 0 && sparkplug.DataType(i).GoType() == "" {
			t.Errorf("DataType(%d) has no GoType", i)
		}
	}
	if got := sparkplug.DataType(35).String(); got != "DataType(35)" {
		t.Errorf("DataType(35).String() = %q", got)
	}
}

// le packs values little-endian, as the array types are.
func le(values ...any) []byte {
	var b []byte
	for _, v := range values {
		b, _ = binary.Append(b, binary.LittleEndian, v)
	}
	return b
}

func ms(v int64) time.Time { return time.UnixMilli(v).UTC() }

// TestDatatypes round-trips a metric of every datatype through an
// NBIRTH built with the generated types.
func TestDatatypes(t *testing.T) {
	dataSet := &sparkplugb.Payload_DataSet{
		NumOfColumns: proto.Uint64(3),
		Columns:      []string{"Batch", "Count", "Passed"},
		Types:        []uint32{uint32(sparkplug.TypeString), uint32(sparkplug.TypeInt32), uint32(sparkplug.TypeBoolean)},
		Rows: []*sparkplugb.Payload_DataSet_Row{
			{Elements: []*sparkplugb.Payload_DataSet_DataSetValue{
				{Value: &sparkplugb.Payload_DataSet_DataSetValue_StringValue{StringValue: "B-17"}},
				{Value: &sparkplugb.Payload_DataSet_DataSetValue_IntValue{IntValue: 0xFFFFFFFE}},
				{Value: &sparkplugb.Payload_DataSet_DataSetValue_BooleanValue{BooleanValue: true}},
			}},
			{Elements: []*sparkplugb.Payload_DataSet_DataSetValue{
				{Value: &sparkplugb.Payload_DataSet_DataSetValue_StringValue{StringValue: "B-18"}},
				{},
				{Value: &sparkplugb.Payload_DataSet_DataSetValue_BooleanValue{BooleanValue: false}},
			}},
		},
	}
	template := &sparkplugb.Payload_Template{
		Version:     proto.String("1.2"),
		TemplateRef: proto.String("Motor"),
		Parameters: []*sparkplugb.Payload_Template_Parameter{
			{Name: proto.String("MaxRPM"), Type: proto.Uint32(uint32(sparkplug.TypeInt32)), Value: &sparkplugb.Payload_Template_Parameter_IntValue{IntValue: 3000}},
		},
		Metrics: []*sparkplugb.Payload_Metric{
			metric(name("Speed"), dtype(sparkplug.TypeFloat), floatv(1450)),
			metric(name("On"), dtype(sparkplug.TypeBoolean), boolv(true)),
		},
	}
	for _, tc := range []struct {
		name string
		opts []mo
		want any
	}{
		{"Int8 type width", []mo{dtype(sparkplug.TypeInt8), intv(0xE9)}, int64(-23)},
		{"Int8 field width", []mo{dtype(sparkplug.TypeInt8), intv(0xFFFFFFE9)}, int64(-23)},
		{"Int8 max", []mo{dtype(sparkplug.TypeInt8), intv(127)}, int64(127)},
		{"Int8 in long_value", []mo{dtype(sparkplug.TypeInt8), longv(0xFFFFFFFFFFFFFF80)}, int64(-128)},
		{"Int16", []mo{dtype(sparkplug.TypeInt16), intv(0x8000)}, int64(-32768)},
		{"Int16 field width", []mo{dtype(sparkplug.TypeInt16), intv(0xFFFF8000)}, int64(-32768)},
		{"Int32", []mo{dtype(sparkplug.TypeInt32), intv(0xFFFFFFFF)}, int64(-1)},
		{"Int32 max", []mo{dtype(sparkplug.TypeInt32), intv(math.MaxInt32)}, int64(math.MaxInt32)},
		{"Int32 in long_value", []mo{dtype(sparkplug.TypeInt32), longv(0xFFFFFFFF)}, int64(-1)},
		{"Int64", []mo{dtype(sparkplug.TypeInt64), longv(math.MaxUint64)}, int64(-1)},
		{"Int64 max", []mo{dtype(sparkplug.TypeInt64), longv(math.MaxInt64)}, int64(math.MaxInt64)},
		{"UInt8", []mo{dtype(sparkplug.TypeUInt8), intv(255)}, uint64(255)},
		{"UInt16", []mo{dtype(sparkplug.TypeUInt16), intv(65535)}, uint64(65535)},
		{"UInt32", []mo{dtype(sparkplug.TypeUInt32), intv(math.MaxUint32)}, uint64(math.MaxUint32)},
		{"UInt32 in long_value", []mo{dtype(sparkplug.TypeUInt32), longv(math.MaxUint32)}, uint64(math.MaxUint32)},
		{"UInt64", []mo{dtype(sparkplug.TypeUInt64), longv(math.MaxUint64)}, uint64(math.MaxUint64)},
		{"Float", []mo{dtype(sparkplug.TypeFloat), floatv(1.23)}, float64(float32(1.23))},
		{"Float in double_value", []mo{dtype(sparkplug.TypeFloat), doublev(2.5)}, 2.5},
		{"Double", []mo{dtype(sparkplug.TypeDouble), doublev(math.Pi)}, math.Pi},
		{"Double NaN bits", []mo{dtype(sparkplug.TypeDouble), doublev(math.Inf(-1))}, math.Inf(-1)},
		{"Boolean", []mo{dtype(sparkplug.TypeBoolean), boolv(true)}, true},
		{"String", []mo{dtype(sparkplug.TypeString), strv("Température ok")}, "Température ok"},
		{"Text", []mo{dtype(sparkplug.TypeText), strv("line1\nline2")}, "line1\nline2"},
		{"UUID", []mo{dtype(sparkplug.TypeUUID), strv("123e4567-e89b-12d3-a456-426614174000")}, "123e4567-e89b-12d3-a456-426614174000"},
		{"DateTime", []mo{dtype(sparkplug.TypeDateTime), longv(baseTime)}, ms(baseTime)},
		{"Bytes", []mo{dtype(sparkplug.TypeBytes), bytesv([]byte{0, 1, 0xFF})}, []byte{0, 1, 0xFF}},
		{"File", []mo{dtype(sparkplug.TypeFile), bytesv([]byte("G1 X10\n"))}, []byte("G1 X10\n")},
		{"DataSet", []mo{dtype(sparkplug.TypeDataSet), datasetv(dataSet)}, sparkplug.DataSet{
			Columns: []string{"Batch", "Count", "Passed"},
			Types:   []sparkplug.DataType{sparkplug.TypeString, sparkplug.TypeInt32, sparkplug.TypeBoolean},
			Rows:    [][]any{{"B-17", int64(-2), true}, {"B-18", nil, false}},
		}},
		{"Template", []mo{dtype(sparkplug.TypeTemplate), templatev(template)}, sparkplug.Template{
			Version: "1.2", Ref: "Motor",
			Parameters: []sparkplug.Parameter{{Name: "MaxRPM", Type: sparkplug.TypeInt32, Value: int64(3000)}},
			Metrics: []sparkplug.Metric{
				{Name: "Speed", Type: sparkplug.TypeFloat, Value: float64(1450)},
				{Name: "On", Type: sparkplug.TypeBoolean, Value: true},
			},
		}},
		// The array examples are the specification's, with its errata for
		// Int8Array and the float types fixed as its text says.
		{"Int8Array", []mo{dtype(sparkplug.TypeInt8Array), bytesv([]byte{0xE9, 0x7B})}, []int64{-23, 123}},
		{"Int16Array", []mo{dtype(sparkplug.TypeInt16Array), bytesv(le(int16(-30000), int16(30000)))}, []int64{-30000, 30000}},
		{"Int32Array", []mo{dtype(sparkplug.TypeInt32Array), bytesv([]byte{0x15, 0xCD, 0x5B, 0x07, 0xB1, 0x68, 0xDE, 0x3A})}, []int64{123456789, 987654321}},
		{"Int64Array", []mo{dtype(sparkplug.TypeInt64Array), bytesv(le(int64(math.MinInt64), int64(-1)))}, []int64{math.MinInt64, -1}},
		{"UInt8Array", []mo{dtype(sparkplug.TypeUInt8Array), bytesv([]byte{23, 250})}, []uint64{23, 250}},
		{"UInt16Array", []mo{dtype(sparkplug.TypeUInt16Array), bytesv(le(uint16(30), uint16(52360)))}, []uint64{30, 52360}},
		{"UInt32Array", []mo{dtype(sparkplug.TypeUInt32Array), bytesv([]byte{0x34, 0, 0, 0, 0x49, 0xFB, 0x55, 0xC4})}, []uint64{52, 3293969225}},
		{"UInt64Array", []mo{dtype(sparkplug.TypeUInt64Array), bytesv([]byte{0x34, 0, 0, 0, 0, 0, 0, 0, 0xD9, 0x9E, 0x02, 0xD1, 0xB2, 0x76, 0x37, 0xE4})}, []uint64{52, 16444743074749521625}},
		{"FloatArray", []mo{dtype(sparkplug.TypeFloatArray), bytesv(le(float32(1.23), float32(89.341)))}, []float64{float64(float32(1.23)), float64(float32(89.341))}},
		{"DoubleArray", []mo{dtype(sparkplug.TypeDoubleArray), bytesv(le(12.354213, 1022.9123213))}, []float64{12.354213, 1022.9123213}},
		{"BooleanArray", []mo{dtype(sparkplug.TypeBooleanArray), bytesv([]byte{0x0C, 0, 0, 0, 0x34, 0xD0})}, []bool{false, false, true, true, false, true, false, false, true, true, false, true}},
		{"BooleanArray empty", []mo{dtype(sparkplug.TypeBooleanArray), bytesv([]byte{0, 0, 0, 0})}, []bool{}},
		{"StringArray", []mo{dtype(sparkplug.TypeStringArray), bytesv([]byte("ABC\x00hello\x00"))}, []string{"ABC", "hello"}},
		{"StringArray with empty string", []mo{dtype(sparkplug.TypeStringArray), bytesv([]byte("\x00x\x00"))}, []string{"", "x"}},
		{"StringArray empty", []mo{dtype(sparkplug.TypeStringArray), bytesv(nil)}, []string{}},
		{"DateTimeArray", []mo{dtype(sparkplug.TypeDateTimeArray), bytesv(le(int64(1256102875335), int64(baseTime)))}, []time.Time{ms(1256102875335), ms(baseTime)}},
		{"Int8Array empty", []mo{dtype(sparkplug.TypeInt8Array), bytesv(nil)}, []int64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDecoder(t, sparkplug.Options{})
			msg := mustDecode(t, d, nbirth, payload(0, bdSeq(0), metric(append([]mo{name(tc.name), stamp(baseTime - 5)}, tc.opts...)...)))
			m, ok := msg.Metric(tc.name)
			if !ok {
				t.Fatalf("metric %q missing from %+v", tc.name, msg.Metrics)
			}
			if m.Err != nil {
				t.Fatalf("Err = %v", m.Err)
			}
			if !reflect.DeepEqual(m.Value, tc.want) {
				t.Fatalf("Value = %#v, want %#v", m.Value, tc.want)
			}
			if got, want := strings.ReplaceAll(fmt.Sprintf("%T", m.Value), "uint8", "byte"), m.Type.GoType(); got != want {
				t.Errorf("Value is a %s, but %v.GoType() says %s", got, m.Type, want)
			}
			if !m.Timestamp.Equal(ms(baseTime - 5)) {
				t.Errorf("Timestamp = %v", m.Timestamp)
			}
		})
	}
}

// TestNulls checks both ways a publisher sends a null.
func TestNulls(t *testing.T) {
	d := newDecoder(t, sparkplug.Options{})
	msg := mustDecode(t, d, nbirth, payload(0,
		metric(name("flagged"), dtype(sparkplug.TypeInt32), null()),
		metric(name("flagged with a value"), dtype(sparkplug.TypeInt32), null(), intv(7)),
		metric(name("no value"), dtype(sparkplug.TypeString)),
	))
	for _, m := range msg.Metrics {
		if !m.IsNull || m.Value != nil || m.Err != nil {
			t.Errorf("metric %q: IsNull %v, Value %#v, Err %v; want a null", m.Name, m.IsNull, m.Value, m.Err)
		}
	}
	if f := msg.Fields(); len(f) != 3 || f["flagged"] != nil {
		t.Errorf("Fields() = %v, want three nil values", f)
	}
}

// TestInvalidValues checks that a value that does not fit its datatype
// fails its own metric, with the sentinel and a message saying why, and
// no other.
func TestInvalidValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []mo
		err  error
		msg  string
	}{
		{"Int8 out of range", []mo{dtype(sparkplug.TypeInt8), intv(0x1FF)}, sparkplug.ErrInvalidValue, "Int8 value 0x1ff out of range"},
		{"Int16 out of range", []mo{dtype(sparkplug.TypeInt16), intv(0x10000)}, sparkplug.ErrInvalidValue, "out of range"},
		{"Int32 in long_value out of range", []mo{dtype(sparkplug.TypeInt32), longv(1 << 40)}, sparkplug.ErrInvalidValue, "out of range"},
		{"UInt8 out of range", []mo{dtype(sparkplug.TypeUInt8), intv(256)}, sparkplug.ErrInvalidValue, "UInt8 value 256 out of range"},
		{"UInt32 in long_value out of range", []mo{dtype(sparkplug.TypeUInt32), longv(1 << 32)}, sparkplug.ErrInvalidValue, "out of range"},
		{"Int32 in string_value", []mo{dtype(sparkplug.TypeInt32), strv("12")}, sparkplug.ErrInvalidValue, "Int32 value in string_value"},
		{"Boolean in int_value", []mo{dtype(sparkplug.TypeBoolean), intv(1)}, sparkplug.ErrInvalidValue, "Boolean value in int_value"},
		{"Float in int_value", []mo{dtype(sparkplug.TypeFloat), intv(1)}, sparkplug.ErrInvalidValue, "Float value in int_value"},
		{"String in bytes_value", []mo{dtype(sparkplug.TypeString), bytesv([]byte("x"))}, sparkplug.ErrInvalidValue, "String value in bytes_value"},
		{"DateTime in int_value", []mo{dtype(sparkplug.TypeDateTime), intv(5)}, sparkplug.ErrInvalidValue, "DateTime value in int_value"},
		{"DateTime out of range", []mo{dtype(sparkplug.TypeDateTime), longv(math.MaxUint64)}, sparkplug.ErrInvalidValue, "out of range"},
		{"timestamp out of range", []mo{dtype(sparkplug.TypeInt32), intv(1), stamp(math.MaxUint64)}, sparkplug.ErrInvalidValue, "timestamp"},
		{"DataSet in bytes_value", []mo{dtype(sparkplug.TypeDataSet), bytesv(nil)}, sparkplug.ErrInvalidValue, "DataSet value in bytes_value"},
		{"Template in string_value", []mo{dtype(sparkplug.TypeTemplate), strv("")}, sparkplug.ErrInvalidValue, "Template value in string_value"},
		{"Int16Array odd length", []mo{dtype(sparkplug.TypeInt16Array), bytesv([]byte{1, 2, 3})}, sparkplug.ErrInvalidValue, "3 bytes is not a whole number of 2-byte elements"},
		{"DoubleArray short", []mo{dtype(sparkplug.TypeDoubleArray), bytesv(make([]byte, 12))}, sparkplug.ErrInvalidValue, "8-byte elements"},
		{"Int32Array in int_value", []mo{dtype(sparkplug.TypeInt32Array), intv(1)}, sparkplug.ErrInvalidValue, "in int_value"},
		{"BooleanArray without count", []mo{dtype(sparkplug.TypeBooleanArray), bytesv([]byte{1, 0})}, sparkplug.ErrInvalidValue, "no 4-byte count"},
		{"BooleanArray too few bytes", []mo{dtype(sparkplug.TypeBooleanArray), bytesv([]byte{9, 0, 0, 0, 0xFF})}, sparkplug.ErrInvalidValue, "9 values needs 2 bytes"},
		{"BooleanArray huge count", []mo{dtype(sparkplug.TypeBooleanArray), bytesv([]byte{0xFF, 0xFF, 0xFF, 0xFF, 0})}, sparkplug.ErrInvalidValue, "4294967295 values"},
		{"BooleanArray extra bytes", []mo{dtype(sparkplug.TypeBooleanArray), bytesv([]byte{1, 0, 0, 0, 0x80, 0})}, sparkplug.ErrInvalidValue, "has 2"},
		{"StringArray unterminated", []mo{dtype(sparkplug.TypeStringArray), bytesv([]byte("ABC\x00hel"))}, sparkplug.ErrInvalidValue, "NUL"},
		{"Unknown datatype", []mo{dtype(sparkplug.TypeUnknown), intv(1)}, sparkplug.ErrUnsupportedType, "datatype Unknown"},
		{"future datatype", []mo{dtype(99), intv(1)}, sparkplug.ErrUnsupportedType, "datatype DataType(99)"},
		{"property type as metric type", []mo{dtype(sparkplug.TypePropertySet), intv(1)}, sparkplug.ErrUnsupportedType, "for properties"},
		{"extension value", []mo{dtype(sparkplug.TypeInt32), extensionv()}, sparkplug.ErrUnsupportedType, "extension_value"},
		{"DataSet columns disagree", []mo{dtype(sparkplug.TypeDataSet), datasetv(&sparkplugb.Payload_DataSet{
			NumOfColumns: proto.Uint64(2), Columns: []string{"a"}, Types: []uint32{uint32(sparkplug.TypeInt32)},
		})}, sparkplug.ErrInvalidValue, "num_of_columns is 2 but 1 columns"},
		{"DataSet types disagree", []mo{dtype(sparkplug.TypeDataSet), datasetv(&sparkplugb.Payload_DataSet{Columns: []string{"a"}})}, sparkplug.ErrInvalidValue, "1 columns but 0 types"},
		{"DataSet short row", []mo{dtype(sparkplug.TypeDataSet), datasetv(&sparkplugb.Payload_DataSet{
			Columns: []string{"a", "b"}, Types: []uint32{uint32(sparkplug.TypeInt32), uint32(sparkplug.TypeInt32)},
			Rows: []*sparkplugb.Payload_DataSet_Row{{Elements: []*sparkplugb.Payload_DataSet_DataSetValue{{}}}},
		})}, sparkplug.ErrInvalidValue, "row 0 has 1 values for 2 columns"},
		{"DataSet cell of wrong type", []mo{dtype(sparkplug.TypeDataSet), datasetv(&sparkplugb.Payload_DataSet{
			Columns: []string{"a"}, Types: []uint32{uint32(sparkplug.TypeBoolean)},
			Rows: []*sparkplugb.Payload_DataSet_Row{{Elements: []*sparkplugb.Payload_DataSet_DataSetValue{
				{Value: &sparkplugb.Payload_DataSet_DataSetValue_StringValue{StringValue: "yes"}},
			}}},
		})}, sparkplug.ErrInvalidValue, `row 0, column "a": Boolean value in string_value`},
		{"DataSet column of Template", []mo{dtype(sparkplug.TypeDataSet), datasetv(&sparkplugb.Payload_DataSet{
			Columns: []string{"a"}, Types: []uint32{uint32(sparkplug.TypeTemplate)},
		})}, sparkplug.ErrUnsupportedType, `column "a": datatype Template`},
		{"Template parameter of wrong type", []mo{dtype(sparkplug.TypeTemplate), templatev(&sparkplugb.Payload_Template{
			Parameters: []*sparkplugb.Payload_Template_Parameter{{Name: proto.String("p"), Type: proto.Uint32(uint32(sparkplug.TypeString)),
				Value: &sparkplugb.Payload_Template_Parameter_BooleanValue{BooleanValue: true}}},
		})}, sparkplug.ErrInvalidValue, `parameter "p": String value in boolean_value`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDecoder(t, sparkplug.Options{})
			msg := mustDecode(t, d, nbirth, payload(0,
				metric(append([]mo{name("bad")}, tc.opts...)...),
				metric(name("good"), dtype(sparkplug.TypeInt32), intv(42)),
			))
			bad, _ := msg.Metric("bad")
			if !errors.Is(bad.Err, tc.err) || !strings.Contains(bad.Err.Error(), tc.msg) {
				t.Fatalf("Err = %v; want %v containing %q", bad.Err, tc.err, tc.msg)
			}
			if bad.Value != nil {
				t.Errorf("Value = %#v alongside Err", bad.Value)
			}
			if good, _ := msg.Metric("good"); good.Err != nil || good.Value != int64(42) {
				t.Errorf("the good metric was affected: %+v", good)
			}
			if _, ok := msg.Fields()["bad"]; ok {
				t.Errorf("Fields() includes the failed metric")
			}
			if err := msg.MetricErrors(); !errors.Is(err, tc.err) {
				t.Errorf("MetricErrors() = %v", err)
			}
		})
	}
}

func TestPropertiesAndMetaData(t *testing.T) {
	str := func(s string) *sparkplugb.Payload_PropertyValue {
		return &sparkplugb.Payload_PropertyValue{Type: proto.Uint32(uint32(sparkplug.TypeString)), Value: &sparkplugb.Payload_PropertyValue_StringValue{StringValue: s}}
	}
	props := &sparkplugb.Payload_PropertySet{
		Keys: []string{"engUnit", "Quality", "deadband", "limits", "history", "note"},
		Values: []*sparkplugb.Payload_PropertyValue{
			str("°C"),
			{Type: proto.Uint32(uint32(sparkplug.TypeInt32)), Value: &sparkplugb.Payload_PropertyValue_IntValue{IntValue: 192}},
			{Type: proto.Uint32(uint32(sparkplug.TypeFloat)), Value: &sparkplugb.Payload_PropertyValue_FloatValue{FloatValue: 0.5}},
			{Type: proto.Uint32(uint32(sparkplug.TypePropertySet)), Value: &sparkplugb.Payload_PropertyValue_PropertysetValue{
				PropertysetValue: &sparkplugb.Payload_PropertySet{Keys: []string{"high"}, Values: []*sparkplugb.Payload_PropertyValue{str("90")}},
			}},
			{Type: proto.Uint32(uint32(sparkplug.TypePropertySetList)), Value: &sparkplugb.Payload_PropertyValue_PropertysetsValue{
				PropertysetsValue: &sparkplugb.Payload_PropertySetList{Propertyset: []*sparkplugb.Payload_PropertySet{
					{Keys: []string{"a"}, Values: []*sparkplugb.Payload_PropertyValue{str("1")}},
				}},
			}},
			{Type: proto.Uint32(uint32(sparkplug.TypeString)), IsNull: proto.Bool(true)},
		},
	}
	m := metric(name("Temperature"), dtype(sparkplug.TypeFile), bytesv([]byte("data")))
	m.Properties = props
	m.Metadata = &sparkplugb.Payload_MetaData{
		IsMultiPart: proto.Bool(true), ContentType: proto.String("text/csv"), Size: proto.Uint64(4), Seq: proto.Uint64(2),
		FileName: proto.String("log.csv"), FileType: proto.String("csv"), Md5: proto.String("8d777f385d3dfec8815d20f7496026dc"), Description: proto.String("shift log"),
	}
	d := newDecoder(t, sparkplug.Options{})
	got, _ := mustDecode(t, d, nbirth, payload(0, m)).Metric("Temperature")
	if got.Err != nil {
		t.Fatal(got.Err)
	}
	wantProps := map[string]any{
		"engUnit": "°C", "Quality": int64(192), "deadband": 0.5,
		"limits": map[string]any{"high": "90"}, "history": []map[string]any{{"a": "1"}}, "note": nil,
	}
	if !reflect.DeepEqual(got.Properties, wantProps) {
		t.Errorf("Properties = %#v\nwant %#v", got.Properties, wantProps)
	}
	wantMeta := &sparkplug.MetaData{IsMultiPart: true, ContentType: "text/csv", Size: 4, Seq: 2, FileName: "log.csv", FileType: "csv",
		MD5: "8d777f385d3dfec8815d20f7496026dc", Description: "shift log"}
	if !reflect.DeepEqual(got.MetaData, wantMeta) {
		t.Errorf("MetaData = %+v", got.MetaData)
	}

	// A property that does not match its type fails the metric, saying
	// which property.
	m.Properties = &sparkplugb.Payload_PropertySet{Keys: []string{"engUnit"}, Values: []*sparkplugb.Payload_PropertyValue{
		{Type: proto.Uint32(uint32(sparkplug.TypeString)), Value: &sparkplugb.Payload_PropertyValue_IntValue{IntValue: 1}},
	}}
	got, _ = mustDecode(t, d, nbirth, payload(0, m)).Metric("Temperature")
	if !errors.Is(got.Err, sparkplug.ErrInvalidValue) || !strings.Contains(got.Err.Error(), `property "engUnit"`) {
		t.Errorf("Err = %v", got.Err)
	}
	m.Properties = &sparkplugb.Payload_PropertySet{Keys: []string{"a", "b"}}
	got, _ = mustDecode(t, d, nbirth, payload(0, m)).Metric("Temperature")
	if !errors.Is(got.Err, sparkplug.ErrInvalidValue) {
		t.Errorf("mismatched keys and values: Err = %v", got.Err)
	}
}

func TestFieldsAndLookup(t *testing.T) {
	d := newDecoder(t, sparkplug.Options{})
	msg := mustDecode(t, d, nbirth, payload(0,
		metric(name("level"), dtype(sparkplug.TypeInt32), intv(3)),
		metric(name("level"), dtype(sparkplug.TypeInt32), intv(1), historical()),
		metric(name("only historical"), dtype(sparkplug.TypeInt32), intv(1), historical()),
		metric(name("only historical"), dtype(sparkplug.TypeInt32), intv(2), historical()),
		metric(name("broken"), dtype(sparkplug.TypeInt8), intv(1000)),
	))
	want := map[string]any{"level": int64(3), "only historical": int64(2)}
	if got := msg.Fields(); !reflect.DeepEqual(got, want) {
		t.Errorf("Fields() = %v, want %v", got, want)
	}
	if m, ok := msg.Metric("level"); !ok || m.Value != int64(3) {
		t.Errorf(`Metric("level") = %+v, %v; want the current value`, m, ok)
	}
	if m, ok := msg.Metric("only historical"); !ok || m.Value != int64(2) {
		t.Errorf(`Metric("only historical") = %+v, %v; want the last one`, m, ok)
	}
	if m, ok := msg.Metric("broken"); !ok || m.Err == nil {
		t.Errorf(`Metric("broken") = %+v, %v; want it, with its Err`, m, ok)
	}
	if _, ok := msg.Metric("absent"); ok {
		t.Errorf(`Metric("absent") found something`)
	}
}
