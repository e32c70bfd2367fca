package sparkplug

import (
	"bytes"
	"encoding/binary"
	"math"
	"time"
)

// array decodes a Sparkplug 3.0 array value from bytes_value. The
// specification packs every element type little-endian, one after the
// other, except BooleanArray (a little-endian uint32 count, then the
// values one bit each, most significant bit first, padded to a whole
// byte) and StringArray (each string followed by a NUL byte).
//
// The specification's worked examples for FloatArray and DoubleArray show
// big-endian bytes, contradicting its own text; this follows the text,
// as Eclipse Tahu does.
//
// Every result is at most eight times the size of b, so a hostile array
// costs memory in proportion to the payload that carried it.
func array(t DataType, b []byte) (any, error) {
	le := binary.LittleEndian
	switch t {
	case TypeInt8Array:
		return fixed(t, b, 1, func(p []byte) int64 { return int64(int8(p[0])) })
	case TypeInt16Array:
		return fixed(t, b, 2, func(p []byte) int64 { return int64(int16(le.Uint16(p))) })
	case TypeInt32Array:
		return fixed(t, b, 4, func(p []byte) int64 { return int64(int32(le.Uint32(p))) })
	case TypeInt64Array:
		return fixed(t, b, 8, func(p []byte) int64 { return int64(le.Uint64(p)) })
	case TypeUInt8Array:
		return fixed(t, b, 1, func(p []byte) uint64 { return uint64(p[0]) })
	case TypeUInt16Array:
		return fixed(t, b, 2, func(p []byte) uint64 { return uint64(le.Uint16(p)) })
	case TypeUInt32Array:
		return fixed(t, b, 4, func(p []byte) uint64 { return uint64(le.Uint32(p)) })
	case TypeUInt64Array:
		return fixed(t, b, 8, func(p []byte) uint64 { return le.Uint64(p) })
	case TypeFloatArray:
		return fixed(t, b, 4, func(p []byte) float64 { return float64(math.Float32frombits(le.Uint32(p))) })
	case TypeDoubleArray:
		return fixed(t, b, 8, func(p []byte) float64 { return math.Float64frombits(le.Uint64(p)) })
	case TypeDateTimeArray:
		// A negative millisecond count is a time before 1970, not an
		// overflow, so unlike a DateTime scalar no value is out of range.
		return fixed(t, b, 8, func(p []byte) time.Time { return time.UnixMilli(int64(le.Uint64(p))).UTC() })
	case TypeBooleanArray:
		return booleanArray(b)
	case TypeStringArray:
		return stringArray(b)
	}
	return nil, failf(ErrUnsupportedType, "datatype %v", t)
}

// fixed decodes b as packed elements of size bytes each.
func fixed[T any](t DataType, b []byte, size int, elem func([]byte) T) ([]T, error) {
	if len(b)%size != 0 {
		return nil, failf(ErrInvalidValue, "%v of %d bytes is not a whole number of %d-byte elements", t, len(b), size)
	}
	out := make([]T, len(b)/size)
	for i := range out {
		out[i] = elem(b[i*size : (i+1)*size])
	}
	return out, nil
}

func booleanArray(b []byte) ([]bool, error) {
	if len(b) < 4 {
		return nil, failf(ErrInvalidValue, "BooleanArray of %d bytes has no 4-byte count", len(b))
	}
	n := uint64(binary.LittleEndian.Uint32(b))
	packed := b[4:]
	// The count is checked against the bytes present before anything is
	// allocated, so a count of 2^32-1 in a short payload costs nothing.
	if want := (n + 7) / 8; uint64(len(packed)) != want {
		return nil, failf(ErrInvalidValue, "BooleanArray of %d values needs %d bytes after its count, has %d", n, want, len(packed))
	}
	out := make([]bool, n)
	for i := range out {
		out[i] = packed[i/8]&(0x80>>(i%8)) != 0
	}
	return out, nil
}

func stringArray(b []byte) ([]string, error) {
	if len(b) == 0 {
		return []string{}, nil
	}
	if b[len(b)-1] != 0 {
		return nil, failf(ErrInvalidValue, "StringArray does not end with a NUL byte")
	}
	parts := bytes.Split(b[:len(b)-1], []byte{0})
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = string(p)
	}
	return out, nil
}
