package gguf

import (
	"fmt"
	"math"
	"math/bits"
)

const (
	// MaxDims is the most dimensions a ggml tensor has (GGML_MAX_DIMS).
	MaxDims = 4

	// MaxNameLen is the longest tensor name ggml stores: GGML_MAX_NAME
	// is 64 bytes including the terminating NUL, and gguf.cpp rejects
	// longer names rather than cutting them.
	MaxNameLen = 63
)

// TensorInfo describes one tensor of a file: everything but its data.
type TensorInfo struct {
	Name string   `json:"name"`
	Type GGMLType `json:"type"`
	// Shape lists the dimensions, ne[0] (the contiguous one) first,
	// as ggml does: a [n_embd, n_vocab] embedding matrix stores n_vocab
	// rows of n_embd elements.
	Shape []uint64 `json:"shape"`
	// Offset is where the data starts, relative to the file's data
	// section (see File.DataOffset).
	Offset uint64 `json:"offset"`
	// Size is the data's length in bytes.
	Size uint64 `json:"size"`
}

// Elements returns the number of elements in the tensor.
func (t TensorInfo) Elements() uint64 {
	n, _ := elements(t.Shape)
	return n
}

// elements returns the product of shape, and false if it overflows an
// int64 (ggml counts elements in int64_t).
func elements(shape []uint64) (uint64, bool) {
	n := uint64(1)
	for _, d := range shape {
		hi, lo := bits.Mul64(n, d)
		if hi != 0 || lo > math.MaxInt64 {
			return 0, false
		}
		n = lo
	}
	return n, true
}

// tensorSize returns the bytes a tensor of type t and shape takes, or an
// error saying why no such tensor can exist. Its checks are those of
// gguf.cpp's tensor info reader, plus dimensions of at least 1: a zero
// dimension is legal for ggml but never occurs in a model, and makes
// llama.cpp's own shape checks meaningless.
func tensorSize(t GGMLType, shape []uint64) (uint64, error) {
	if len(shape) < 1 || len(shape) > MaxDims {
		return 0, fmt.Errorf("%d dimensions, want 1 to %d: %w", len(shape), MaxDims, ErrCorrupt)
	}
	for i, d := range shape {
		if d == 0 || d > math.MaxInt64 {
			return 0, fmt.Errorf("dimension %d is %d, want 1 to %d: %w", i, d, int64(math.MaxInt64), ErrCorrupt)
		}
	}
	n, ok := elements(shape)
	if !ok {
		return 0, fmt.Errorf("shape %v has more than %d elements: %w", shape, int64(math.MaxInt64), ErrCorrupt)
	}
	if !t.Known() {
		if t.removed() {
			return 0, fmt.Errorf("ggml type %d (%s) was removed from the GGUF format; requantize the model: %w",
				uint32(t), t, ErrUnsupportedTensorType)
		}
		return 0, fmt.Errorf("ggml type %d is unknown (this build knows 0 to %d; a newer llama.cpp may use it): %w",
			uint32(t), uint32(GGMLTypeCount)-1, ErrUnsupportedTensorType)
	}
	bs := t.BlockSize()
	if shape[0]%bs != 0 {
		return 0, fmt.Errorf("row length %d is not a multiple of %s's block size %d: %w", shape[0], t, bs, ErrCorrupt)
	}
	hi, size := bits.Mul64(n/bs, t.TypeSize())
	if hi != 0 || size > math.MaxInt64 {
		return 0, fmt.Errorf("shape %v of type %s is more than %d bytes: %w", shape, t, int64(math.MaxInt64), ErrCorrupt)
	}
	return size, nil
}

// padTo rounds n up to a multiple of align, a power of two, and reports
// false on overflow.
func padTo(n, align uint64) (uint64, bool) {
	p := (n + align - 1) &^ (align - 1)
	return p, p >= n
}
