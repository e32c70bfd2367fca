package gguf_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/ember-edge/ember/daemon/gguf"
	"github.com/ember-edge/ember/internal/testkit"
)

func TestMetadata(t *testing.T) {
	kvs := modelKVs(map[string]gguf.Value{
		"general.license":               gguf.String("MIT"),
		"general.file_type":             gguf.Uint32(uint32(gguf.FileTypeQ4_K_M)),
		"llama.attention.head_count_kv": gguf.Array([]int32{2, 4, 1}),
		"llama.feed_forward_length":     gguf.Uint64(96),
		"tokenizer.chat_template":       gguf.String("{{ messages }}"),
	})
	f, err := read(write(t, kvs, modelTensors()))
	if err != nil {
		t.Fatal(err)
	}
	want := gguf.Metadata{
		Architecture: "llama", Name: "test model", License: "MIT",
		FileType: 15, FileTypeName: "Q4_K_M",
		Quantization:   "F16", // token_embd, 512 bytes, outweighs the rest
		ParameterCount: 32*8 + 5 + 32*3 + 32,
		TensorCount:    4,
		TensorBytes:    512 + 20 + 3*34 + 128,
		ContextLength:  128, EmbeddingLength: 32, BlockCount: 1, HeadCount: 4,
		HeadCountKV: 4, FeedForwardLength: 96,
		VocabSize: len(smallVocab), TokenizerModel: "llama", ChatTemplate: "{{ messages }}",
	}
	if got := f.Metadata(); got != want {
		t.Errorf("Metadata:\n got %+v\nwant %+v", got, want)
	}
}

func TestMetadataGuessesFileType(t *testing.T) {
	f, err := read(validModel(t)) // no general.file_type
	if err != nil {
		t.Fatal(err)
	}
	m := f.Metadata()
	if m.FileType != uint32(gguf.FileTypeF16) || m.FileTypeName != "F16 (guessed)" {
		t.Errorf("file type %d %q, want 1 \"F16 (guessed)\"", m.FileType, m.FileTypeName)
	}
}

func TestMetadataJSON(t *testing.T) {
	f, err := read(validModel(t))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(f.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"architecture":"llama"`, `"parameter_count":`, `"vocab_size":8`, `"tensor_bytes":762`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON %s lacks %s", b, key)
		}
	}
}

func TestKVSummary(t *testing.T) {
	long := strings.Repeat("é", 300)
	kvs := modelKVs(map[string]gguf.Value{
		"t.long":   gguf.String(long),
		"t.small":  gguf.Array([]int32{1, 2, 3}),
		"t.floats": gguf.Array(make([]float32, 100)),
		"t.f":      gguf.Float32(1e-5),
		"t.b":      gguf.Bool(true),
	})
	f, err := read(write(t, kvs, nil))
	if err != nil {
		t.Fatal(err)
	}
	s := f.KVSummary()
	if len(s) != len(kvs) {
		t.Errorf("%d entries, want %d", len(s), len(kvs))
	}
	for key, want := range map[string]string{
		"general.architecture":  "llama",
		"tokenizer.ggml.tokens": "[8 strings]",
		"tokenizer.ggml.scores": "[0 0 0 0 0 0 0 0]",
		"t.small":               "[1 2 3]",
		"t.floats":              "[100 float32]",
		"t.f":                   "1e-05",
		"t.b":                   "true",
		"llama.block_count":     "1",
	} {
		if s[key] != want {
			t.Errorf("%s = %q, want %q", key, s[key], want)
		}
	}
	if got := s["t.long"]; !strings.HasSuffix(got, "… (600 bytes)") || len(got) > 300 {
		t.Errorf("long string rendered as %q", got)
	}
}

func TestValueConversions(t *testing.T) {
	tests := []struct {
		v          gguf.Value
		u          uint64
		uOK        bool
		i          int64
		iOK        bool
		typ, elem  gguf.ValueType
		arrayLen   int
		isArray    bool
		renderedAs string
	}{
		{gguf.Uint8(7), 7, true, 7, true, gguf.TypeUint8, gguf.TypeUint8, 0, false, "7"},
		{gguf.Int32(-3), 0, false, -3, true, gguf.TypeInt32, gguf.TypeInt32, 0, false, "-3"},
		{gguf.Uint64(math.MaxUint64), math.MaxUint64, true, 0, false, gguf.TypeUint64, gguf.TypeUint64, 0, false, "18446744073709551615"},
		{gguf.Int64(5), 5, true, 5, true, gguf.TypeInt64, gguf.TypeInt64, 0, false, "5"},
		{gguf.Float32(1), 0, false, 0, false, gguf.TypeFloat32, gguf.TypeFloat32, 0, false, "1"},
		{gguf.String("7"), 0, false, 0, false, gguf.TypeString, gguf.TypeString, 0, false, "7"},
		{gguf.Array([]uint32{1}), 0, false, 0, false, gguf.TypeArray, gguf.TypeUint32, 1, true, "[1]"},
		{gguf.Array[string](nil), 0, false, 0, false, gguf.TypeArray, gguf.TypeString, 0, true, "[0 strings]"},
	}
	for _, tc := range tests {
		u, uOK := tc.v.Uint()
		i, iOK := tc.v.Int()
		if u != tc.u || uOK != tc.uOK || i != tc.i || iOK != tc.iOK {
			t.Errorf("%v: Uint %d %v, Int %d %v", tc.v, u, uOK, i, iOK)
		}
		if tc.v.Type() != tc.typ || tc.v.ElemType() != tc.elem || tc.v.Len() != tc.arrayLen || tc.v.IsArray() != tc.isArray {
			t.Errorf("%v: type %s elem %s len %d array %v", tc.v, tc.v.Type(), tc.v.ElemType(), tc.v.Len(), tc.v.IsArray())
		}
		if got := tc.v.String(); got != tc.renderedAs {
			t.Errorf("String() = %q, want %q", got, tc.renderedAs)
		}
	}
	if (gguf.Value{}).Valid() || !gguf.Uint8(0).Valid() {
		t.Error("Valid is wrong")
	}
}

func TestFileTypes(t *testing.T) {
	tests := []struct {
		name string
		want gguf.FileType
	}{
		{"Q4_K_M", gguf.FileTypeQ4_K_M},
		{"q8_0", gguf.FileTypeQ8_0},
		{" F16 ", gguf.FileTypeF16},
		{"Q4_K", gguf.FileTypeQ4_K_M},
		{"mxfp4_moe", gguf.FileTypeMXFP4MoE},
	}
	for _, tc := range tests {
		got, err := gguf.ParseFileType(tc.name)
		if err != nil || got != tc.want {
			t.Errorf("ParseFileType(%q) = %s, %v; want %s", tc.name, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "Q9_9", "COPY"} {
		if _, err := gguf.ParseFileType(bad); err == nil || !strings.Contains(err.Error(), "Q4_K_M") {
			t.Errorf("ParseFileType(%q): %v, want an error listing the known types", bad, err)
		}
	}
	for _, name := range gguf.FileTypeNames() {
		ft, err := gguf.ParseFileType(name)
		if err != nil || ft.String() != name {
			t.Errorf("%s does not round-trip: %s, %v", name, ft, err)
		}
	}
	if s := gguf.FileType(5).String(); s != "FileType(5)" {
		t.Errorf("removed file type renders as %q", s)
	}
}

func TestGGMLTypes(t *testing.T) {
	for typ := gguf.GGMLType(0); typ < gguf.GGMLTypeCount; typ++ {
		if !typ.Known() {
			continue
		}
		if got, ok := gguf.ParseGGMLType(strings.ToLower(typ.String())); !ok || got != typ {
			t.Errorf("%s does not round-trip: %s", typ, got)
		}
		if typ.TypeSize() == 0 || typ.BlockSize() == 0 {
			t.Errorf("%s: block %d, size %d", typ, typ.BlockSize(), typ.TypeSize())
		}
	}
	for _, removed := range []gguf.GGMLType{4, 5, 31, 32, 33, 36, 37, 38, gguf.GGMLTypeCount} {
		if removed.Known() {
			t.Errorf("type %d (%s) should be unknown", uint32(removed), removed)
		}
	}
	if !gguf.SupportedArchitecture("llama") || !gguf.SupportedArchitecture("qwen3moe") || gguf.SupportedArchitecture("clip") {
		t.Error("architecture table is wrong")
	}
}

// TestReferenceModel reads a file written by llama.cpp's own converter,
// when the shared reference models are present.
func TestReferenceModel(t *testing.T) {
	path, ok := testkit.SharedModel("llama-2-tiny-random.gguf")
	if !ok {
		t.Skip("reference model llama-2-tiny-random.gguf not present in ../shared/models")
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	m := f.Metadata()
	if m.Architecture != "llama" || m.VocabSize != 32000 || m.FileTypeName != "F16" || m.Quantization != "F16" {
		t.Errorf("metadata %+v", m)
	}
	if m.TensorCount != 12 || m.BlockCount != 1 || m.EmbeddingLength != 8 || m.ContextLength != 4096 {
		t.Errorf("shape metadata %+v", m)
	}
	if f.Version != 3 || f.Alignment != 32 || f.Size != 1750560 {
		t.Errorf("version %d alignment %d size %d", f.Version, f.Alignment, f.Size)
	}
	embd, ok := f.Tensor("token_embd.weight")
	if !ok || embd.Type != gguf.GGMLTypeF16 || embd.Shape[0] != 8 || embd.Shape[1] != 32000 {
		t.Errorf("token_embd.weight: %+v", embd)
	}
	if tokens, _ := f.Strings("tokenizer.ggml.tokens"); len(tokens) < 3 || tokens[1] != "<s>" || tokens[2] != "</s>" {
		t.Errorf("tokens start %q", tokens[:3])
	}
	if eps, ok := f.Float("llama.attention.layer_norm_rms_epsilon"); !ok || math.Abs(eps-1e-5) > 1e-9 {
		t.Errorf("rms epsilon %v %v", eps, ok)
	}
}
