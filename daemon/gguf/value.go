package gguf

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ValueType is the type tag of a metadata value in a GGUF file.
type ValueType uint32

// The thirteen GGUF value types, numbered as in the file format.
const (
	TypeUint8 ValueType = iota
	TypeInt8
	TypeUint16
	TypeInt16
	TypeUint32
	TypeInt32
	TypeFloat32
	TypeBool
	TypeString
	TypeArray
	TypeUint64
	TypeInt64
	TypeFloat64
)

var valueTypeNames = [...]string{
	TypeUint8: "uint8", TypeInt8: "int8", TypeUint16: "uint16", TypeInt16: "int16",
	TypeUint32: "uint32", TypeInt32: "int32", TypeFloat32: "float32", TypeBool: "bool",
	TypeString: "string", TypeArray: "array", TypeUint64: "uint64", TypeInt64: "int64",
	TypeFloat64: "float64",
}

// String returns the type's name, e.g. "uint32".
func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return "type(" + strconv.FormatUint(uint64(t), 10) + ")"
}

// size returns the encoded size of a fixed-size type, and 0 for strings,
// arrays and unknown types.
func (t ValueType) size() uint64 {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// Element is the set of Go types a GGUF value, or an array element, can
// have.
type Element interface {
	uint8 | int8 | uint16 | int16 | uint32 | int32 | float32 | bool | string | uint64 | int64 | float64
}

// Value is one metadata value: a scalar or an array of scalars. The zero
// Value is invalid. Values are immutable once built; arrays share the slice
// they were built from, which callers must not modify afterwards.
type Value struct {
	v any // one of the Element types, or a slice of one
}

// Uint8 returns a uint8 Value.
func Uint8(x uint8) Value { return Value{x} }

// Int8 returns an int8 Value.
func Int8(x int8) Value { return Value{x} }

// Uint16 returns a uint16 Value.
func Uint16(x uint16) Value { return Value{x} }

// Int16 returns an int16 Value.
func Int16(x int16) Value { return Value{x} }

// Uint32 returns a uint32 Value.
func Uint32(x uint32) Value { return Value{x} }

// Int32 returns an int32 Value.
func Int32(x int32) Value { return Value{x} }

// Float32 returns a float32 Value.
func Float32(x float32) Value { return Value{x} }

// Bool returns a bool Value.
func Bool(x bool) Value { return Value{x} }

// String returns a string Value.
func String(x string) Value { return Value{x} }

// Uint64 returns a uint64 Value.
func Uint64(x uint64) Value { return Value{x} }

// Int64 returns an int64 Value.
func Int64(x int64) Value { return Value{x} }

// Float64 returns a float64 Value.
func Float64(x float64) Value { return Value{x} }

// Array returns an array Value holding xs, which it does not copy.
func Array[T Element](xs []T) Value {
	if xs == nil {
		xs = []T{} // an array, even if empty, is never the invalid zero Value
	}
	return Value{xs}
}

// ArrayOf returns the elements of an array Value whose elements are of
// type T, and false for any other Value.
func ArrayOf[T Element](v Value) ([]T, bool) {
	xs, ok := v.v.([]T)
	return xs, ok
}

// Type returns the Value's type: TypeArray for arrays.
func (v Value) Type() ValueType {
	t, arr := v.types()
	if arr {
		return TypeArray
	}
	return t
}

// ElemType returns the type of an array's elements, or the type of a
// scalar.
func (v Value) ElemType() ValueType {
	t, _ := v.types()
	return t
}

// types returns the element type and whether v is an array. The zero
// Value reports an out-of-range type.
func (v Value) types() (ValueType, bool) {
	switch v.v.(type) {
	case uint8:
		return TypeUint8, false
	case int8:
		return TypeInt8, false
	case uint16:
		return TypeUint16, false
	case int16:
		return TypeInt16, false
	case uint32:
		return TypeUint32, false
	case int32:
		return TypeInt32, false
	case float32:
		return TypeFloat32, false
	case bool:
		return TypeBool, false
	case string:
		return TypeString, false
	case uint64:
		return TypeUint64, false
	case int64:
		return TypeInt64, false
	case float64:
		return TypeFloat64, false
	case []uint8:
		return TypeUint8, true
	case []int8:
		return TypeInt8, true
	case []uint16:
		return TypeUint16, true
	case []int16:
		return TypeInt16, true
	case []uint32:
		return TypeUint32, true
	case []int32:
		return TypeInt32, true
	case []float32:
		return TypeFloat32, true
	case []bool:
		return TypeBool, true
	case []string:
		return TypeString, true
	case []uint64:
		return TypeUint64, true
	case []int64:
		return TypeInt64, true
	case []float64:
		return TypeFloat64, true
	}
	return ValueType(math.MaxUint32), false
}

// Valid reports whether v holds a value (the zero Value does not).
func (v Value) Valid() bool { return v.v != nil }

// IsArray reports whether v is an array.
func (v Value) IsArray() bool {
	_, arr := v.types()
	return arr
}

// Len returns the number of elements of an array, and 0 for a scalar.
func (v Value) Len() int {
	switch xs := v.v.(type) {
	case []uint8:
		return len(xs)
	case []int8:
		return len(xs)
	case []uint16:
		return len(xs)
	case []int16:
		return len(xs)
	case []uint32:
		return len(xs)
	case []int32:
		return len(xs)
	case []float32:
		return len(xs)
	case []bool:
		return len(xs)
	case []string:
		return len(xs)
	case []uint64:
		return len(xs)
	case []int64:
		return len(xs)
	case []float64:
		return len(xs)
	}
	return 0
}

// Any returns the underlying Go value: one of the Element types, or a
// slice of one.
func (v Value) Any() any { return v.v }

// Uint returns an integer scalar as a uint64, and false for other values
// and for negative integers. Converters write the same key with different
// integer widths, so callers ask for "an unsigned integer", not a width.
func (v Value) Uint() (uint64, bool) {
	switch x := v.v.(type) {
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	case int8, int16, int32, int64:
		i, _ := v.Int()
		if i < 0 {
			return 0, false
		}
		return uint64(i), true
	}
	return 0, false
}

// Int returns an integer scalar as an int64, and false for other values
// and for unsigned integers above math.MaxInt64.
func (v Value) Int() (int64, bool) {
	switch x := v.v.(type) {
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint8, uint16, uint32, uint64:
		u, _ := v.Uint()
		if u > math.MaxInt64 {
			return 0, false
		}
		return int64(u), true
	}
	return 0, false
}

// Float returns a float32 or float64 scalar as a float64.
func (v Value) Float() (float64, bool) {
	switch x := v.v.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// Bool returns a bool scalar.
func (v Value) Bool() (bool, bool) {
	b, ok := v.v.(bool)
	return b, ok
}

// Text returns a string scalar. (String formats any Value for display.)
func (v Value) Text() (string, bool) {
	s, ok := v.v.(string)
	return s, ok
}

// Strings returns the elements of a string array.
func (v Value) Strings() ([]string, bool) { return ArrayOf[string](v) }

// maxShownString bounds how much of a long string (a chat template, a
// license text) String shows, so a summary stays a summary.
const maxShownString = 256

// String renders v for display: scalars as themselves, strings cut at
// maxShownString bytes, and arrays summarised, e.g.
// "[32000 strings]" or, for short numeric arrays, "[1 2 3]".
func (v Value) String() string {
	switch x := v.v.(type) {
	case nil:
		return "<invalid>"
	case string:
		return cutString(x)
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	if !v.IsArray() {
		return fmt.Sprint(v.v)
	}
	n, elem := v.Len(), v.ElemType()
	if elem == TypeString {
		if n == 1 {
			return "[1 string]"
		}
		return fmt.Sprintf("[%d strings]", n)
	}
	if n <= 8 {
		return fmt.Sprint(v.v) // "[1 2 3]"
	}
	return fmt.Sprintf("[%d %s]", n, elem)
}

func cutString(s string) string {
	if len(s) <= maxShownString {
		return s
	}
	cut := maxShownString
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("… (%d bytes)", len(s))
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// KV is one metadata key and its value, in file order.
type KV struct {
	Key   string
	Value Value
}

// String renders the pair as "key = value".
func (kv KV) String() string {
	var b strings.Builder
	b.WriteString(kv.Key)
	b.WriteString(" = ")
	b.WriteString(kv.Value.String())
	return b.String()
}
