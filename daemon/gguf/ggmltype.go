package gguf

import (
	"strconv"
	"strings"
)

// GGMLType is the ggml data type of a tensor (enum ggml_type): how its
// elements are stored, in blocks of BlockSize elements taking TypeSize
// bytes each.
type GGMLType uint32

// The ggml types, numbered as in ggml.h. Gaps are types that were removed
// from the format (see ErrUnsupportedTensorType).
const (
	GGMLTypeF32     GGMLType = 0
	GGMLTypeF16     GGMLType = 1
	GGMLTypeQ4_0    GGMLType = 2
	GGMLTypeQ4_1    GGMLType = 3
	GGMLTypeQ5_0    GGMLType = 6
	GGMLTypeQ5_1    GGMLType = 7
	GGMLTypeQ8_0    GGMLType = 8
	GGMLTypeQ8_1    GGMLType = 9
	GGMLTypeQ2_K    GGMLType = 10
	GGMLTypeQ3_K    GGMLType = 11
	GGMLTypeQ4_K    GGMLType = 12
	GGMLTypeQ5_K    GGMLType = 13
	GGMLTypeQ6_K    GGMLType = 14
	GGMLTypeQ8_K    GGMLType = 15
	GGMLTypeIQ2_XXS GGMLType = 16
	GGMLTypeIQ2_XS  GGMLType = 17
	GGMLTypeIQ3_XXS GGMLType = 18
	GGMLTypeIQ1_S   GGMLType = 19
	GGMLTypeIQ4_NL  GGMLType = 20
	GGMLTypeIQ3_S   GGMLType = 21
	GGMLTypeIQ2_S   GGMLType = 22
	GGMLTypeIQ4_XS  GGMLType = 23
	GGMLTypeI8      GGMLType = 24
	GGMLTypeI16     GGMLType = 25
	GGMLTypeI32     GGMLType = 26
	GGMLTypeI64     GGMLType = 27
	GGMLTypeF64     GGMLType = 28
	GGMLTypeIQ1_M   GGMLType = 29
	GGMLTypeBF16    GGMLType = 30
	GGMLTypeTQ1_0   GGMLType = 34
	GGMLTypeTQ2_0   GGMLType = 35
	GGMLTypeMXFP4   GGMLType = 39
	GGMLTypeNVFP4   GGMLType = 40
	GGMLTypeQ1_0    GGMLType = 41
	GGMLTypeQ2_0    GGMLType = 42
)

// ggmlTraits describes one ggml type: its name (as gguf-py spells it),
// elements per block and bytes per block. A zero blockSize marks a type
// number that was removed from the format; removed names it.
type ggmlTraits struct {
	name      string
	blockSize uint64
	typeSize  uint64
}

// ggmlTypes is ggml's type_traits table for the types GGUF files may
// hold, indexed by GGMLType. The sizes were checked against
// ggml_blck_size and ggml_type_size of the llama.cpp libraries ember loads
// (synth's tests repeat that check against whatever libraries are
// installed).
var ggmlTypes = [...]ggmlTraits{
	GGMLTypeF32:     {"F32", 1, 4},
	GGMLTypeF16:     {"F16", 1, 2},
	GGMLTypeQ4_0:    {"Q4_0", 32, 18},
	GGMLTypeQ4_1:    {"Q4_1", 32, 20},
	4:               {"Q4_2", 0, 0},
	5:               {"Q4_3", 0, 0},
	GGMLTypeQ5_0:    {"Q5_0", 32, 22},
	GGMLTypeQ5_1:    {"Q5_1", 32, 24},
	GGMLTypeQ8_0:    {"Q8_0", 32, 34},
	GGMLTypeQ8_1:    {"Q8_1", 32, 36},
	GGMLTypeQ2_K:    {"Q2_K", 256, 84},
	GGMLTypeQ3_K:    {"Q3_K", 256, 110},
	GGMLTypeQ4_K:    {"Q4_K", 256, 144},
	GGMLTypeQ5_K:    {"Q5_K", 256, 176},
	GGMLTypeQ6_K:    {"Q6_K", 256, 210},
	GGMLTypeQ8_K:    {"Q8_K", 256, 292},
	GGMLTypeIQ2_XXS: {"IQ2_XXS", 256, 66},
	GGMLTypeIQ2_XS:  {"IQ2_XS", 256, 74},
	GGMLTypeIQ3_XXS: {"IQ3_XXS", 256, 98},
	GGMLTypeIQ1_S:   {"IQ1_S", 256, 50},
	GGMLTypeIQ4_NL:  {"IQ4_NL", 32, 18},
	GGMLTypeIQ3_S:   {"IQ3_S", 256, 110},
	GGMLTypeIQ2_S:   {"IQ2_S", 256, 82},
	GGMLTypeIQ4_XS:  {"IQ4_XS", 256, 136},
	GGMLTypeI8:      {"I8", 1, 1},
	GGMLTypeI16:     {"I16", 1, 2},
	GGMLTypeI32:     {"I32", 1, 4},
	GGMLTypeI64:     {"I64", 1, 8},
	GGMLTypeF64:     {"F64", 1, 8},
	GGMLTypeIQ1_M:   {"IQ1_M", 256, 56},
	GGMLTypeBF16:    {"BF16", 1, 2},
	31:              {"Q4_0_4_4", 0, 0},
	32:              {"Q4_0_4_8", 0, 0},
	33:              {"Q4_0_8_8", 0, 0},
	GGMLTypeTQ1_0:   {"TQ1_0", 256, 54},
	GGMLTypeTQ2_0:   {"TQ2_0", 256, 66},
	36:              {"IQ4_NL_4_4", 0, 0},
	37:              {"IQ4_NL_4_8", 0, 0},
	38:              {"IQ4_NL_8_8", 0, 0},
	GGMLTypeMXFP4:   {"MXFP4", 32, 17},
	GGMLTypeNVFP4:   {"NVFP4", 64, 36},
	GGMLTypeQ1_0:    {"Q1_0", 128, 18},
	GGMLTypeQ2_0:    {"Q2_0", 64, 18},
}

// GGMLTypeCount is one past the highest ggml type this build knows.
const GGMLTypeCount = GGMLType(len(ggmlTypes))

func (t GGMLType) traits() ggmlTraits {
	if t < GGMLTypeCount {
		return ggmlTypes[t]
	}
	return ggmlTraits{}
}

// Known reports whether t is a ggml type GGUF files may hold: defined,
// and not removed from the format.
func (t GGMLType) Known() bool { return t.traits().blockSize != 0 }

// removed reports whether t is a type number that was removed from the
// format, as opposed to one this build has never heard of.
func (t GGMLType) removed() bool {
	tr := t.traits()
	return tr.name != "" && tr.blockSize == 0
}

// BlockSize returns the number of elements in one block of t, and 0 for
// an unknown type.
func (t GGMLType) BlockSize() uint64 { return t.traits().blockSize }

// TypeSize returns the bytes one block of t takes, and 0 for an unknown
// type.
func (t GGMLType) TypeSize() uint64 { return t.traits().typeSize }

// String returns the type's name, e.g. "Q4_K", or "GGMLType(99)".
func (t GGMLType) String() string {
	if name := t.traits().name; name != "" {
		return name
	}
	return "GGMLType(" + strconv.FormatUint(uint64(t), 10) + ")"
}

// ParseGGMLType returns the type named name (e.g. "Q8_0", "f16"),
// ignoring case.
func ParseGGMLType(name string) (GGMLType, bool) {
	for i, tr := range ggmlTypes {
		if tr.blockSize != 0 && strings.EqualFold(tr.name, name) {
			return GGMLType(i), true
		}
	}
	return 0, false
}
