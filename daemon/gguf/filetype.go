package gguf

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// FileType is llama.cpp's llama_ftype, stored as general.file_type: the
// quantization recipe a model was written with, e.g. Q4_K_M, which mixes
// Q4_K and Q6_K tensors.
type FileType uint32

// The llama_ftype values, numbered as in llama.h.
const (
	FileTypeF32      FileType = 0
	FileTypeF16      FileType = 1
	FileTypeQ4_0     FileType = 2
	FileTypeQ4_1     FileType = 3
	FileTypeQ8_0     FileType = 7
	FileTypeQ5_0     FileType = 8
	FileTypeQ5_1     FileType = 9
	FileTypeQ2_K     FileType = 10
	FileTypeQ3_K_S   FileType = 11
	FileTypeQ3_K_M   FileType = 12
	FileTypeQ3_K_L   FileType = 13
	FileTypeQ4_K_S   FileType = 14
	FileTypeQ4_K_M   FileType = 15
	FileTypeQ5_K_S   FileType = 16
	FileTypeQ5_K_M   FileType = 17
	FileTypeQ6_K     FileType = 18
	FileTypeIQ2_XXS  FileType = 19
	FileTypeIQ2_XS   FileType = 20
	FileTypeQ2_K_S   FileType = 21
	FileTypeIQ3_XS   FileType = 22
	FileTypeIQ3_XXS  FileType = 23
	FileTypeIQ1_S    FileType = 24
	FileTypeIQ4_NL   FileType = 25
	FileTypeIQ3_S    FileType = 26
	FileTypeIQ3_M    FileType = 27
	FileTypeIQ2_S    FileType = 28
	FileTypeIQ2_M    FileType = 29
	FileTypeIQ4_XS   FileType = 30
	FileTypeIQ1_M    FileType = 31
	FileTypeBF16     FileType = 32
	FileTypeTQ1_0    FileType = 36
	FileTypeTQ2_0    FileType = 37
	FileTypeMXFP4MoE FileType = 38
	FileTypeNVFP4    FileType = 39
	FileTypeQ1_0     FileType = 40
	FileTypeQ2_0     FileType = 41
)

// fileTypeNames spells each file type the way llama-quantize's command
// line does, which is how people name quantizations ("Q4_K_M").
var fileTypeNames = map[FileType]string{
	FileTypeF32: "F32", FileTypeF16: "F16", FileTypeBF16: "BF16",
	FileTypeQ4_0: "Q4_0", FileTypeQ4_1: "Q4_1", FileTypeQ5_0: "Q5_0", FileTypeQ5_1: "Q5_1",
	FileTypeQ8_0: "Q8_0",
	FileTypeQ2_K: "Q2_K", FileTypeQ2_K_S: "Q2_K_S",
	FileTypeQ3_K_S: "Q3_K_S", FileTypeQ3_K_M: "Q3_K_M", FileTypeQ3_K_L: "Q3_K_L",
	FileTypeQ4_K_S: "Q4_K_S", FileTypeQ4_K_M: "Q4_K_M",
	FileTypeQ5_K_S: "Q5_K_S", FileTypeQ5_K_M: "Q5_K_M",
	FileTypeQ6_K:    "Q6_K",
	FileTypeIQ2_XXS: "IQ2_XXS", FileTypeIQ2_XS: "IQ2_XS", FileTypeIQ2_S: "IQ2_S", FileTypeIQ2_M: "IQ2_M",
	FileTypeIQ3_XXS: "IQ3_XXS", FileTypeIQ3_XS: "IQ3_XS", FileTypeIQ3_S: "IQ3_S", FileTypeIQ3_M: "IQ3_M",
	FileTypeIQ1_S: "IQ1_S", FileTypeIQ1_M: "IQ1_M",
	FileTypeIQ4_NL: "IQ4_NL", FileTypeIQ4_XS: "IQ4_XS",
	FileTypeTQ1_0: "TQ1_0", FileTypeTQ2_0: "TQ2_0",
	FileTypeMXFP4MoE: "MXFP4_MOE", FileTypeNVFP4: "NVFP4",
	FileTypeQ1_0: "Q1_0", FileTypeQ2_0: "Q2_0",
}

// fileTypeAliases are the extra names llama-quantize accepts.
var fileTypeAliases = map[string]FileType{
	"Q3_K": FileTypeQ3_K_M,
	"Q4_K": FileTypeQ4_K_M,
	"Q5_K": FileTypeQ5_K_M,
}

// String returns the file type's name, e.g. "Q4_K_M", or "FileType(5)"
// for a number llama.cpp does not define (some were removed).
func (ft FileType) String() string {
	if name, ok := fileTypeNames[ft]; ok {
		return name
	}
	return "FileType(" + strconv.FormatUint(uint64(ft), 10) + ")"
}

// Known reports whether ft is a file type llama.cpp defines.
func (ft FileType) Known() bool {
	_, ok := fileTypeNames[ft]
	return ok
}

// NeedsImportanceMatrix reports whether llama.cpp refuses to quantize to
// ft without an importance matrix, because the result would be unusable.
func (ft FileType) NeedsImportanceMatrix() bool {
	switch ft {
	case FileTypeIQ1_S, FileTypeIQ1_M, FileTypeIQ2_XXS, FileTypeIQ2_XS, FileTypeIQ2_S, FileTypeQ2_K_S:
		return true
	}
	return false
}

// ParseFileType returns the file type named name, as llama-quantize
// spells it ("Q4_K_M", "q8_0", "F16"; "Q4_K" means Q4_K_M), ignoring case.
func ParseFileType(name string) (FileType, error) {
	up := strings.ToUpper(strings.TrimSpace(name))
	if ft, ok := fileTypeAliases[up]; ok {
		return ft, nil
	}
	for ft, n := range fileTypeNames {
		if n == up {
			return ft, nil
		}
	}
	return 0, fmt.Errorf("unknown file type %q (known: %s)", name, strings.Join(FileTypeNames(), ", "))
}

// FileTypeNames lists the names ParseFileType accepts, sorted, aliases
// excluded.
func FileTypeNames() []string {
	names := make([]string, 0, len(fileTypeNames))
	for _, n := range fileTypeNames {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// guessFileType maps the dominant tensor type of a file without
// general.file_type to the file type llama.cpp would guess for it
// (llama_model_loader does the same, and prints "(guessed)").
func guessFileType(t GGMLType) (FileType, bool) {
	switch t {
	case GGMLTypeF32:
		return FileTypeF32, true
	case GGMLTypeF16:
		return FileTypeF16, true
	case GGMLTypeBF16:
		return FileTypeBF16, true
	case GGMLTypeQ4_0:
		return FileTypeQ4_0, true
	case GGMLTypeQ4_1:
		return FileTypeQ4_1, true
	case GGMLTypeQ5_0:
		return FileTypeQ5_0, true
	case GGMLTypeQ5_1:
		return FileTypeQ5_1, true
	case GGMLTypeQ8_0:
		return FileTypeQ8_0, true
	case GGMLTypeQ2_K:
		return FileTypeQ2_K, true
	case GGMLTypeQ3_K:
		return FileTypeQ3_K_M, true
	case GGMLTypeQ4_K:
		return FileTypeQ4_K_M, true
	case GGMLTypeQ5_K:
		return FileTypeQ5_K_M, true
	case GGMLTypeQ6_K:
		return FileTypeQ6_K, true
	case GGMLTypeTQ1_0:
		return FileTypeTQ1_0, true
	case GGMLTypeTQ2_0:
		return FileTypeTQ2_0, true
	case GGMLTypeIQ2_XXS:
		return FileTypeIQ2_XXS, true
	case GGMLTypeIQ2_XS:
		return FileTypeIQ2_XS, true
	case GGMLTypeIQ2_S:
		return FileTypeIQ2_S, true
	case GGMLTypeIQ3_XXS:
		return FileTypeIQ3_XXS, true
	case GGMLTypeIQ1_S:
		return FileTypeIQ1_S, true
	case GGMLTypeIQ1_M:
		return FileTypeIQ1_M, true
	case GGMLTypeIQ4_NL:
		return FileTypeIQ4_NL, true
	case GGMLTypeIQ4_XS:
		return FileTypeIQ4_XS, true
	case GGMLTypeIQ3_S:
		return FileTypeIQ3_S, true
	case GGMLTypeMXFP4:
		return FileTypeMXFP4MoE, true
	case GGMLTypeNVFP4:
		return FileTypeNVFP4, true
	case GGMLTypeQ1_0:
		return FileTypeQ1_0, true
	case GGMLTypeQ2_0:
		return FileTypeQ2_0, true
	}
	return 0, false
}
