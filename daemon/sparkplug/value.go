package sparkplug

import (
	"math"
	"time"

	sparkplugb "github.com/ember-edge/ember/protos/sparkplug/b/v1"
)

// field is the protobuf field of a value oneof that a value travelled in.
// The four oneofs of the schema (metric, property, template parameter and
// data set value) share these, so one conversion serves them all.
type field uint8

const (
	fieldNone field = iota
	fieldInt
	fieldLong
	fieldFloat
	fieldDouble
	fieldBoolean
	fieldString
	fieldBytes
	fieldDataSet
	fieldTemplate
	fieldPropertySet
	fieldPropertySetList
	fieldExtension
)

var fieldNames = [...]string{"no value", "int_value", "long_value", "float_value", "double_value",
	"boolean_value", "string_value", "bytes_value", "dataset_value", "template_value",
	"propertyset_value", "propertysets_value", "extension_value"}

func (f field) String() string { return fieldNames[f] }

// raw is a value as it came off the wire, before its datatype is applied.
type raw struct {
	field field
	u     uint64 // int_value, long_value
	f     float64
	b     bool
	s     string
	bytes []byte
	ds    *sparkplugb.Payload_DataSet
	tpl   *sparkplugb.Payload_Template
	ps    *sparkplugb.Payload_PropertySet
	psl   *sparkplugb.Payload_PropertySetList
}

func metricRaw(m *sparkplugb.Payload_Metric) raw {
	switch v := m.GetValue().(type) {
	case *sparkplugb.Payload_Metric_IntValue:
		return raw{field: fieldInt, u: uint64(v.IntValue)}
	case *sparkplugb.Payload_Metric_LongValue:
		return raw{field: fieldLong, u: v.LongValue}
	case *sparkplugb.Payload_Metric_FloatValue:
		return raw{field: fieldFloat, f: float64(v.FloatValue)}
	case *sparkplugb.Payload_Metric_DoubleValue:
		return raw{field: fieldDouble, f: v.DoubleValue}
	case *sparkplugb.Payload_Metric_BooleanValue:
		return raw{field: fieldBoolean, b: v.BooleanValue}
	case *sparkplugb.Payload_Metric_StringValue:
		return raw{field: fieldString, s: v.StringValue}
	case *sparkplugb.Payload_Metric_BytesValue:
		return raw{field: fieldBytes, bytes: v.BytesValue}
	case *sparkplugb.Payload_Metric_DatasetValue:
		return raw{field: fieldDataSet, ds: v.DatasetValue}
	case *sparkplugb.Payload_Metric_TemplateValue:
		return raw{field: fieldTemplate, tpl: v.TemplateValue}
	case *sparkplugb.Payload_Metric_ExtensionValue:
		return raw{field: fieldExtension}
	}
	return raw{}
}

func propertyRaw(p *sparkplugb.Payload_PropertyValue) raw {
	switch v := p.GetValue().(type) {
	case *sparkplugb.Payload_PropertyValue_IntValue:
		return raw{field: fieldInt, u: uint64(v.IntValue)}
	case *sparkplugb.Payload_PropertyValue_LongValue:
		return raw{field: fieldLong, u: v.LongValue}
	case *sparkplugb.Payload_PropertyValue_FloatValue:
		return raw{field: fieldFloat, f: float64(v.FloatValue)}
	case *sparkplugb.Payload_PropertyValue_DoubleValue:
		return raw{field: fieldDouble, f: v.DoubleValue}
	case *sparkplugb.Payload_PropertyValue_BooleanValue:
		return raw{field: fieldBoolean, b: v.BooleanValue}
	case *sparkplugb.Payload_PropertyValue_StringValue:
		return raw{field: fieldString, s: v.StringValue}
	case *sparkplugb.Payload_PropertyValue_PropertysetValue:
		return raw{field: fieldPropertySet, ps: v.PropertysetValue}
	case *sparkplugb.Payload_PropertyValue_PropertysetsValue:
		return raw{field: fieldPropertySetList, psl: v.PropertysetsValue}
	case *sparkplugb.Payload_PropertyValue_ExtensionValue:
		return raw{field: fieldExtension}
	}
	return raw{}
}

func parameterRaw(p *sparkplugb.Payload_Template_Parameter) raw {
	switch v := p.GetValue().(type) {
	case *sparkplugb.Payload_Template_Parameter_IntValue:
		return raw{field: fieldInt, u: uint64(v.IntValue)}
	case *sparkplugb.Payload_Template_Parameter_LongValue:
		return raw{field: fieldLong, u: v.LongValue}
	case *sparkplugb.Payload_Template_Parameter_FloatValue:
		return raw{field: fieldFloat, f: float64(v.FloatValue)}
	case *sparkplugb.Payload_Template_Parameter_DoubleValue:
		return raw{field: fieldDouble, f: v.DoubleValue}
	case *sparkplugb.Payload_Template_Parameter_BooleanValue:
		return raw{field: fieldBoolean, b: v.BooleanValue}
	case *sparkplugb.Payload_Template_Parameter_StringValue:
		return raw{field: fieldString, s: v.StringValue}
	case *sparkplugb.Payload_Template_Parameter_ExtensionValue:
		return raw{field: fieldExtension}
	}
	return raw{}
}

func dataSetRaw(v *sparkplugb.Payload_DataSet_DataSetValue) raw {
	switch v := v.GetValue().(type) {
	case *sparkplugb.Payload_DataSet_DataSetValue_IntValue:
		return raw{field: fieldInt, u: uint64(v.IntValue)}
	case *sparkplugb.Payload_DataSet_DataSetValue_LongValue:
		return raw{field: fieldLong, u: v.LongValue}
	case *sparkplugb.Payload_DataSet_DataSetValue_FloatValue:
		return raw{field: fieldFloat, f: float64(v.FloatValue)}
	case *sparkplugb.Payload_DataSet_DataSetValue_DoubleValue:
		return raw{field: fieldDouble, f: v.DoubleValue}
	case *sparkplugb.Payload_DataSet_DataSetValue_BooleanValue:
		return raw{field: fieldBoolean, b: v.BooleanValue}
	case *sparkplugb.Payload_DataSet_DataSetValue_StringValue:
		return raw{field: fieldString, s: v.StringValue}
	case *sparkplugb.Payload_DataSet_DataSetValue_ExtensionValue:
		return raw{field: fieldExtension}
	}
	return raw{}
}

// scalar converts a value of one of the types that every value oneof can
// carry: the integers, Float, Double, Boolean, the string types, DateTime,
// and, where the oneof has bytes_value, Bytes, File and the arrays.
func scalar(t DataType, r raw) (any, error) {
	if r.field == fieldExtension {
		return nil, failf(ErrUnsupportedType, "%v value in extension_value", t)
	}
	switch t {
	case TypeInt8, TypeInt16, TypeInt32, TypeInt64:
		return signed(t, r)
	case TypeUInt8, TypeUInt16, TypeUInt32, TypeUInt64:
		return unsigned(t, r)
	case TypeFloat, TypeDouble:
		// A Float in double_value, or a Double in float_value, loses
		// nothing it had, so both are taken.
		if r.field == fieldFloat || r.field == fieldDouble {
			return r.f, nil
		}
	case TypeBoolean:
		if r.field == fieldBoolean {
			return r.b, nil
		}
	case TypeString, TypeText, TypeUUID:
		if r.field == fieldString {
			return r.s, nil
		}
	case TypeDateTime:
		if r.field == fieldLong {
			return millis(r.u)
		}
	case TypeBytes, TypeFile:
		if r.field == fieldBytes {
			return r.bytes, nil
		}
	case TypeInt8Array, TypeInt16Array, TypeInt32Array, TypeInt64Array,
		TypeUInt8Array, TypeUInt16Array, TypeUInt32Array, TypeUInt64Array,
		TypeFloatArray, TypeDoubleArray, TypeBooleanArray, TypeStringArray, TypeDateTimeArray:
		if r.field == fieldBytes {
			return array(t, r.bytes)
		}
	default:
		return nil, failf(ErrUnsupportedType, "datatype %v", t)
	}
	return nil, wrongField(t, r)
}

func wrongField(t DataType, r raw) error {
	return failf(ErrInvalidValue, "%v value in %v", t, r.field)
}

// intBits is the width of each integer datatype.
func intBits(t DataType) uint {
	switch t {
	case TypeInt8, TypeUInt8:
		return 8
	case TypeInt16, TypeUInt16:
		return 16
	case TypeInt32, TypeUInt32:
		return 32
	}
	return 64
}

// signed decodes a signed integer. Sparkplug 3.0 carries Int8, Int16 and
// Int32 in the uint32 int_value and Int64 in the uint64 long_value, as
// two's complement. Publishers disagree on the width of that two's
// complement: some sign-extend -1 to the field (0xFFFFFFFF), others write
// the type's own width (0xFF for an Int8), and older ones put small types
// in long_value. All of these are unambiguous, so all are accepted; a
// value that fits none of them is an error, not truncated.
func signed(t DataType, r raw) (any, error) {
	var width uint
	switch r.field {
	case fieldInt:
		width = 32
	case fieldLong:
		width = 64
	default:
		return nil, wrongField(t, r)
	}
	bits := intBits(t)
	// The value sign-extended from its field's width.
	x := int64(r.u<<(64-width)) >> (64 - width)
	if bits == 64 || (x >= -1<<(bits-1) && x < 1<<(bits-1)) {
		return x, nil
	}
	// The value as the two's complement of the type's own width.
	if r.u < 1<<bits {
		return int64(r.u<<(64-bits)) >> (64 - bits), nil
	}
	return nil, failf(ErrInvalidValue, "%v value %#x out of range", t, r.u)
}

// unsigned decodes an unsigned integer from int_value or long_value.
func unsigned(t DataType, r raw) (any, error) {
	if r.field != fieldInt && r.field != fieldLong {
		return nil, wrongField(t, r)
	}
	if bits := intBits(t); bits < 64 && r.u >= 1<<bits {
		return nil, failf(ErrInvalidValue, "%v value %d out of range", t, r.u)
	}
	return r.u, nil
}

// millis converts a Sparkplug timestamp, milliseconds since the Unix
// epoch, to a time in UTC. Past year 292,278,994 it is an error rather
// than a negative time.
func millis(ms uint64) (time.Time, error) {
	if ms > math.MaxInt64 {
		return time.Time{}, failf(ErrInvalidValue, "timestamp %d out of range", ms)
	}
	return time.UnixMilli(int64(ms)).UTC(), nil
}
