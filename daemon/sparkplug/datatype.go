package sparkplug

import "strconv"

// DataType is the Sparkplug datatype of a metric, property, template
// parameter or data set column. Its values are the specification's
// numbers, the same as the generated sparkplugb.DataType.
type DataType uint32

// The Sparkplug 3.0 datatypes.
const (
	TypeUnknown         DataType = 0
	TypeInt8            DataType = 1
	TypeInt16           DataType = 2
	TypeInt32           DataType = 3
	TypeInt64           DataType = 4
	TypeUInt8           DataType = 5
	TypeUInt16          DataType = 6
	TypeUInt32          DataType = 7
	TypeUInt64          DataType = 8
	TypeFloat           DataType = 9
	TypeDouble          DataType = 10
	TypeBoolean         DataType = 11
	TypeString          DataType = 12
	TypeDateTime        DataType = 13
	TypeText            DataType = 14
	TypeUUID            DataType = 15
	TypeDataSet         DataType = 16
	TypeBytes           DataType = 17
	TypeFile            DataType = 18
	TypeTemplate        DataType = 19
	TypePropertySet     DataType = 20
	TypePropertySetList DataType = 21
	TypeInt8Array       DataType = 22
	TypeInt16Array      DataType = 23
	TypeInt32Array      DataType = 24
	TypeInt64Array      DataType = 25
	TypeUInt8Array      DataType = 26
	TypeUInt16Array     DataType = 27
	TypeUInt32Array     DataType = 28
	TypeUInt64Array     DataType = 29
	TypeFloatArray      DataType = 30
	TypeDoubleArray     DataType = 31
	TypeBooleanArray    DataType = 32
	TypeStringArray     DataType = 33
	TypeDateTimeArray   DataType = 34
)

var dataTypeNames = [...]string{
	"Unknown", "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32",
	"UInt64", "Float", "Double", "Boolean", "String", "DateTime", "Text",
	"UUID", "DataSet", "Bytes", "File", "Template", "PropertySet",
	"PropertySetList", "Int8Array", "Int16Array", "Int32Array", "Int64Array",
	"UInt8Array", "UInt16Array", "UInt32Array", "UInt64Array", "FloatArray",
	"DoubleArray", "BooleanArray", "StringArray", "DateTimeArray",
}

// String returns the specification's name of t, such as "UInt64", or
// "DataType(42)" for a number Sparkplug 3.0 does not define.
func (t DataType) String() string {
	if int(t) < len(dataTypeNames) {
		return dataTypeNames[t]
	}
	return "DataType(" + strconv.FormatUint(uint64(t), 10) + ")"
}

// GoType describes the Go type of a decoded value of type t, for
// documentation and error messages: Int8 to Int64 and their arrays decode
// to int64 and []int64, UInt8 to UInt64 to uint64 and []uint64, Float and
// Double to float64, DateTime to time.Time in UTC, String, Text and UUID to
// string, Bytes and File to []byte, DataSet to DataSet and Template to
// Template.
func (t DataType) GoType() string {
	switch t {
	case TypeInt8, TypeInt16, TypeInt32, TypeInt64:
		return "int64"
	case TypeUInt8, TypeUInt16, TypeUInt32, TypeUInt64:
		return "uint64"
	case TypeFloat, TypeDouble:
		return "float64"
	case TypeBoolean:
		return "bool"
	case TypeString, TypeText, TypeUUID:
		return "string"
	case TypeDateTime:
		return "time.Time"
	case TypeBytes, TypeFile:
		return "[]byte"
	case TypeDataSet:
		return "sparkplug.DataSet"
	case TypeTemplate:
		return "sparkplug.Template"
	case TypePropertySet:
		return "map[string]any"
	case TypePropertySetList:
		return "[]map[string]any"
	case TypeInt8Array, TypeInt16Array, TypeInt32Array, TypeInt64Array:
		return "[]int64"
	case TypeUInt8Array, TypeUInt16Array, TypeUInt32Array, TypeUInt64Array:
		return "[]uint64"
	case TypeFloatArray, TypeDoubleArray:
		return "[]float64"
	case TypeBooleanArray:
		return "[]bool"
	case TypeStringArray:
		return "[]string"
	case TypeDateTimeArray:
		return "[]time.Time"
	}
	return ""
}
