package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
)

// TensorData is a tensor for Write: its description, and a function that
// produces its data, so that data is streamed rather than held in memory.
type TensorData struct {
	Name  string
	Type  GGMLType
	Shape []uint64 // ne[0] first, as in TensorInfo
	// WriteData writes the tensor's data, exactly TensorSize(Type,
	// Shape) bytes, to w. Write calls it once, in table order; w is
	// buffered, so small writes are cheap.
	WriteData func(w io.Writer) error
}

// TensorSize returns the bytes a tensor of type t and shape takes, and an
// error if no valid GGUF tensor has that type and shape.
func TensorSize(t GGMLType, shape []uint64) (uint64, error) {
	size, err := tensorSize(t, shape)
	if err != nil {
		return 0, fmt.Errorf("gguf: %w", err)
	}
	return size, nil
}

// Write writes a GGUF v3 file holding kvs and tensors to w. The tensor
// data is aligned to general.alignment if kvs sets it (as a uint32 power
// of two), else to DefaultAlignment, and padded with zeros after every
// tensor, as gguf.cpp writes it.
//
// Write refuses to produce a file Parse would reject: empty or duplicate
// keys or names, invalid values, shapes or types. It does not check the
// model-level rules of Validate, so tests can write files that break
// them.
func Write(w io.Writer, kvs []KV, tensors []TensorData) error {
	align, err := writeAlignment(kvs)
	if err != nil {
		return err
	}
	sizes, err := checkTensors(tensors)
	if err != nil {
		return err
	}
	e := &encoder{w: bufio.NewWriterSize(w, 1<<20)}
	e.bytes([]byte(Magic))
	e.u32(Version)
	e.u64(uint64(len(tensors)))
	e.u64(uint64(len(kvs)))
	seen := make(map[string]bool, len(kvs))
	for i, kv := range kvs {
		if kv.Key == "" || seen[kv.Key] {
			return fmt.Errorf("gguf: write kv %d %q: empty or duplicate key", i, kv.Key)
		}
		seen[kv.Key] = true
		if !kv.Value.Valid() {
			return fmt.Errorf("gguf: write kv %d %q: invalid (zero) value", i, kv.Key)
		}
		e.str(kv.Key)
		e.value(kv.Value)
	}
	var offset uint64
	for i, t := range tensors {
		e.str(t.Name)
		e.u32(uint32(len(t.Shape)))
		for _, d := range t.Shape {
			e.u64(d)
		}
		e.u32(uint32(t.Type))
		e.u64(offset)
		padded, _ := padTo(sizes[i], align)
		offset += padded
	}
	e.pad(align)
	for i, t := range tensors {
		if e.err != nil {
			break
		}
		cw := &countingWriter{w: e.w}
		if err := t.WriteData(cw); err != nil {
			return fmt.Errorf("gguf: write tensor %d %q: %w", i, t.Name, err)
		}
		if cw.err != nil {
			e.err = cw.err
			break
		}
		if cw.n != sizes[i] {
			return fmt.Errorf("gguf: write tensor %d %q: wrote %d bytes of data, want %d (%s %v)",
				i, t.Name, cw.n, sizes[i], t.Type, t.Shape)
		}
		e.n += cw.n
		e.pad(align)
	}
	if e.err == nil {
		e.err = e.w.Flush()
	}
	if e.err != nil {
		return fmt.Errorf("gguf: write: %w", e.err)
	}
	return nil
}

// writeAlignment returns the alignment kvs ask for.
func writeAlignment(kvs []KV) (uint64, error) {
	for _, kv := range kvs {
		if kv.Key != KeyAlignment {
			continue
		}
		a, ok := kv.Value.Any().(uint32)
		if !ok || a == 0 || a&(a-1) != 0 {
			return 0, fmt.Errorf("gguf: write: %s must be a uint32 power of two, not %s %v",
				KeyAlignment, describeType(kv.Value), kv.Value)
		}
		return uint64(a), nil
	}
	return DefaultAlignment, nil
}

// checkTensors checks names, types and shapes, and returns each
// tensor's size.
func checkTensors(tensors []TensorData) ([]uint64, error) {
	sizes := make([]uint64, len(tensors))
	seen := make(map[string]bool, len(tensors))
	for i, t := range tensors {
		switch {
		case t.Name == "", len(t.Name) > MaxNameLen, strings.IndexByte(t.Name, 0) >= 0:
			return nil, fmt.Errorf("gguf: write tensor %d %q: name must be 1 to %d bytes, without NUL", i, t.Name, MaxNameLen)
		case seen[t.Name]:
			return nil, fmt.Errorf("gguf: write tensor %d %q: duplicate name", i, t.Name)
		case t.WriteData == nil:
			return nil, fmt.Errorf("gguf: write tensor %d %q: no WriteData", i, t.Name)
		}
		seen[t.Name] = true
		size, err := tensorSize(t.Type, t.Shape)
		if err != nil {
			return nil, fmt.Errorf("gguf: write tensor %d %q: %w", i, t.Name, err)
		}
		sizes[i] = size
	}
	return sizes, nil
}

// encoder writes GGUF's little-endian fields, keeping the first error
// and the byte count (for padding).
type encoder struct {
	w   *bufio.Writer
	n   uint64
	err error
	buf [8]byte
}

func (e *encoder) bytes(p []byte) {
	if e.err != nil {
		return
	}
	_, e.err = e.w.Write(p)
	e.n += uint64(len(p))
}

func (e *encoder) u8(x uint8) { e.bytes([]byte{x}) }

func (e *encoder) u16(x uint16) {
	binary.LittleEndian.PutUint16(e.buf[:2], x)
	e.bytes(e.buf[:2])
}

func (e *encoder) u32(x uint32) {
	binary.LittleEndian.PutUint32(e.buf[:4], x)
	e.bytes(e.buf[:4])
}

func (e *encoder) u64(x uint64) {
	binary.LittleEndian.PutUint64(e.buf[:8], x)
	e.bytes(e.buf[:8])
}

func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	if e.err == nil {
		_, e.err = e.w.WriteString(s)
		e.n += uint64(len(s))
	}
}

// pad writes zeros up to the next multiple of align.
func (e *encoder) pad(align uint64) {
	p, _ := padTo(e.n, align)
	var zeros [64]byte
	for e.n < p && e.err == nil {
		e.bytes(zeros[:min(p-e.n, uint64(len(zeros)))])
	}
}

// value writes a value's type tag(s) and contents.
func (e *encoder) value(v Value) {
	if v.IsArray() {
		e.u32(uint32(TypeArray))
		e.u32(uint32(v.ElemType()))
		e.u64(uint64(v.Len()))
	} else {
		e.u32(uint32(v.Type()))
	}
	switch x := v.Any().(type) {
	case uint8:
		e.u8(x)
	case int8:
		e.u8(uint8(x))
	case uint16:
		e.u16(x)
	case int16:
		e.u16(uint16(x))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case float32:
		e.u32(math.Float32bits(x))
	case bool:
		e.u8(boolByte(x))
	case string:
		e.str(x)
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float64:
		e.u64(math.Float64bits(x))
	case []uint8:
		e.bytes(x)
	case []int8:
		each(e, x, func(x int8) { e.u8(uint8(x)) })
	case []uint16:
		each(e, x, e.u16)
	case []int16:
		each(e, x, func(x int16) { e.u16(uint16(x)) })
	case []uint32:
		each(e, x, e.u32)
	case []int32:
		each(e, x, func(x int32) { e.u32(uint32(x)) })
	case []float32:
		each(e, x, func(x float32) { e.u32(math.Float32bits(x)) })
	case []bool:
		each(e, x, func(x bool) { e.u8(boolByte(x)) })
	case []string:
		each(e, x, e.str)
	case []uint64:
		each(e, x, e.u64)
	case []int64:
		each(e, x, func(x int64) { e.u64(uint64(x)) })
	case []float64:
		each(e, x, func(x float64) { e.u64(math.Float64bits(x)) })
	default:
		e.err = errors.New("invalid value")
	}
}

func each[T any](e *encoder, xs []T, put func(T)) {
	for _, x := range xs {
		if e.err != nil {
			return
		}
		put(x)
	}
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// countingWriter counts the bytes written through it and keeps the first
// error, so Write can check WriteData wrote exactly the tensor's size.
type countingWriter struct {
	w   io.Writer
	n   uint64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += uint64(n)
	c.err = err
	return n, err
}
