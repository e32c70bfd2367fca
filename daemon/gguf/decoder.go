package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

const (
	// maxStringLen and maxArrayLen are llama.cpp's GGUF_MAX_STRING_LENGTH
	// and GGUF_MAX_ARRAY_ELEMENTS: a longer string or array is corrupt
	// whatever the file's size.
	maxStringLen = 1 << 30
	maxArrayLen  = 1 << 30

	// maxCount bounds the tensor and key/value counts. The largest
	// models have tens of thousands of tensors; a count beyond this is a
	// corrupt header, not a big model.
	maxCount = 1 << 24

	// readBufferSize is the largest buffer the decoder reads through:
	// big enough that a header of tens of thousands of small fields
	// costs few reads, small enough not to matter.
	readBufferSize = 64 << 10
)

// decoder reads GGUF's little-endian fields from a buffered reader,
// tracking the offset and the bytes left in the file, so that every
// length can be checked against what remains before anything is
// allocated for it.
type decoder struct {
	r    *bufio.Reader
	pos  uint64 // offset of the next byte
	size uint64 // file size
	buf  [8]byte
}

func newDecoder(r io.ReaderAt, size int64) *decoder {
	bufSize := readBufferSize
	if size < int64(bufSize) {
		// A small input gets a small buffer: reading a 40-byte file
		// must not cost 64 KiB.
		bufSize = max(int(size), 16)
	}
	return &decoder{
		r:    bufio.NewReaderSize(io.NewSectionReader(r, 0, size), bufSize),
		size: uint64(size),
	}
}

// remaining returns the bytes left after the current offset.
func (d *decoder) remaining() uint64 { return d.size - d.pos }

// need checks that n more bytes exist for what, without reading them.
func (d *decoder) need(n uint64, what string) error {
	if n > d.remaining() {
		return failf(ErrTruncated, "%s at offset %d needs %d bytes, but the file (size %d) has only %d left",
			what, d.pos, n, d.size, d.remaining())
	}
	return nil
}

// read fills p, after need has been checked by the caller or here.
func (d *decoder) read(p []byte, what string) error {
	if err := d.need(uint64(len(p)), what); err != nil {
		return err
	}
	n, err := io.ReadFull(d.r, p)
	d.pos += uint64(n)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			// The reader had fewer bytes than its stated size: the file
			// shrank under us, which is truncation too.
			return failf(ErrTruncated, "%s at offset %d: file ended early", what, d.pos)
		}
		return fmt.Errorf("reading %s at offset %d: %w", what, d.pos, err)
	}
	return nil
}

func (d *decoder) u8(what string) (uint8, error) {
	err := d.read(d.buf[:1], what)
	return d.buf[0], err
}

func (d *decoder) u16(what string) (uint16, error) {
	err := d.read(d.buf[:2], what)
	return binary.LittleEndian.Uint16(d.buf[:2]), err
}

func (d *decoder) u32(what string) (uint32, error) {
	err := d.read(d.buf[:4], what)
	return binary.LittleEndian.Uint32(d.buf[:4]), err
}

func (d *decoder) u64(what string) (uint64, error) {
	err := d.read(d.buf[:8], what)
	return binary.LittleEndian.Uint64(d.buf[:8]), err
}

// str reads a length-prefixed string.
func (d *decoder) str(what string) (string, error) {
	n, err := d.u64(what + " length")
	if err != nil {
		return "", err
	}
	if n > maxStringLen {
		return "", failf(ErrCorrupt, "%s at offset %d has length %d, more than the %d llama.cpp allows",
			what, d.pos-8, n, maxStringLen)
	}
	if err := d.need(n, what); err != nil {
		return "", err
	}
	b := make([]byte, n)
	if err := d.read(b, what); err != nil {
		return "", err
	}
	return string(b), nil
}

// count reads a count of items of at least minSize bytes each, and checks
// it against limit and against the bytes left: the check that keeps a
// hostile count from becoming a huge allocation.
func (d *decoder) count(what string, minSize, limit uint64) (uint64, error) {
	at := d.pos
	n, err := d.u64(what)
	if err != nil {
		return 0, err
	}
	if n > limit {
		return 0, failf(ErrCorrupt, "%s at offset %d is %d, more than the plausible %d", what, at, n, limit)
	}
	if n*minSize > d.remaining() { // no overflow: n ≤ 2^30, minSize ≤ 64
		return 0, failf(ErrTruncated, "%s at offset %d is %d, needing at least %d more bytes, but the file (size %d) has only %d left",
			what, at, n, n*minSize, d.size, d.remaining())
	}
	return n, nil
}

// value reads a value of type t, which is not an array.
func (d *decoder) value(t ValueType, what string) (Value, error) {
	switch t {
	case TypeUint8:
		x, err := d.u8(what)
		return Uint8(x), err
	case TypeInt8:
		x, err := d.u8(what)
		return Int8(int8(x)), err
	case TypeUint16:
		x, err := d.u16(what)
		return Uint16(x), err
	case TypeInt16:
		x, err := d.u16(what)
		return Int16(int16(x)), err
	case TypeUint32:
		x, err := d.u32(what)
		return Uint32(x), err
	case TypeInt32:
		x, err := d.u32(what)
		return Int32(int32(x)), err
	case TypeFloat32:
		x, err := d.u32(what)
		return Float32(math.Float32frombits(x)), err
	case TypeBool:
		// Any non-zero byte is true, as in llama.cpp: stricter would
		// reject files llama.cpp loads.
		x, err := d.u8(what)
		return Bool(x != 0), err
	case TypeString:
		x, err := d.str(what)
		return String(x), err
	case TypeUint64:
		x, err := d.u64(what)
		return Uint64(x), err
	case TypeInt64:
		x, err := d.u64(what)
		return Int64(int64(x)), err
	case TypeFloat64:
		x, err := d.u64(what)
		return Float64(math.Float64frombits(x)), err
	}
	return Value{}, failf(ErrCorrupt, "%s has unknown value type %d", what, uint32(t))
}

// array reads an array of n elements of type t, n already checked
// against the bytes left.
func (d *decoder) array(t ValueType, n uint64, what string) (Value, error) {
	if t == TypeString {
		xs := make([]string, n)
		for i := range xs {
			s, err := d.str("string")
			if err != nil {
				return Value{}, fmt.Errorf("element %d: %w", i, err)
			}
			xs[i] = s
		}
		return Array(xs), nil
	}
	raw := make([]byte, n*t.size())
	if err := d.read(raw, what); err != nil {
		return Value{}, err
	}
	switch t {
	case TypeUint8:
		return Array(raw), nil
	case TypeInt8:
		return Array(decodeSlice(raw, 1, func(b []byte) int8 { return int8(b[0]) })), nil
	case TypeBool:
		return Array(decodeSlice(raw, 1, func(b []byte) bool { return b[0] != 0 })), nil
	case TypeUint16:
		return Array(decodeSlice(raw, 2, binary.LittleEndian.Uint16)), nil
	case TypeInt16:
		return Array(decodeSlice(raw, 2, func(b []byte) int16 { return int16(binary.LittleEndian.Uint16(b)) })), nil
	case TypeUint32:
		return Array(decodeSlice(raw, 4, binary.LittleEndian.Uint32)), nil
	case TypeInt32:
		return Array(decodeSlice(raw, 4, func(b []byte) int32 { return int32(binary.LittleEndian.Uint32(b)) })), nil
	case TypeFloat32:
		return Array(decodeSlice(raw, 4, func(b []byte) float32 {
			return math.Float32frombits(binary.LittleEndian.Uint32(b))
		})), nil
	case TypeUint64:
		return Array(decodeSlice(raw, 8, binary.LittleEndian.Uint64)), nil
	case TypeInt64:
		return Array(decodeSlice(raw, 8, func(b []byte) int64 { return int64(binary.LittleEndian.Uint64(b)) })), nil
	case TypeFloat64:
		return Array(decodeSlice(raw, 8, func(b []byte) float64 {
			return math.Float64frombits(binary.LittleEndian.Uint64(b))
		})), nil
	}
	return Value{}, failf(ErrCorrupt, "%s has unknown element type %d", what, uint32(t))
}

func decodeSlice[T any](raw []byte, size int, dec func([]byte) T) []T {
	xs := make([]T, len(raw)/size)
	for i := range xs {
		xs[i] = dec(raw[i*size:])
	}
	return xs
}
