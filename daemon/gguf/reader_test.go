package gguf_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ember-edge/ember/daemon/gguf"
)

// malformedCase is one file Read must reject, the sentinel it must
// wrap, and words its message must contain to name the problem and where.
type malformedCase struct {
	name string
	data []byte
	want error
	msg  []string
}

// malformedCases returns the table shared by TestReadMalformed and the
// fuzz target's seed corpus.
func malformedCases(t testing.TB) []malformedCase {
	valid := validModel(t)
	withKVs := func(edit map[string]gguf.Value) []byte { return write(t, modelKVs(edit), modelTensors()) }
	oneTensor := func(typ gguf.GGMLType, offset uint64, shape ...uint64) []byte {
		return rawModel(func(r *raw) { r.tensor("t", typ, offset, shape...) }, 1, 4096)
	}
	// A file with one metadata pair whose value is written by kv.
	oneKV := func(kv func(r *raw)) []byte {
		r := (&raw{}).header(0, 1)
		kv(r)
		return r.zeros(64).Bytes()
	}
	headerWith := func(version uint32, nTensors, nKVs uint64) []byte {
		r := &raw{}
		r.WriteString("GGUF")
		return r.u32(version).u64(nTensors).u64(nKVs).zeros(64).Bytes()
	}
	html := []byte("<!DOCTYPE html><html><body>Access denied</body></html>\n")
	lfs := []byte("version https://git-lfs.github.com/spec/v1\noid sha256:81f2\nsize 1750560\n")
	legacy := append([]byte("tjgg"), make([]byte, 60)...)

	return []malformedCase{
		// Not GGUF at all.
		{"empty file", nil, gguf.ErrTruncated, []string{"empty"}},
		{"partial magic", []byte("GG"), gguf.ErrTruncated, []string{"inside the magic"}},
		{"text file", []byte("hello, this is not a model\n"), gguf.ErrNotGGUF, []string{`"hell"`, "text file"}},
		{"html error page", html, gguf.ErrNotGGUF, []string{"HTML"}},
		{"git lfs pointer", lfs, gguf.ErrNotGGUF, []string{"Git LFS pointer"}},
		{"legacy GGJT", legacy, gguf.ErrNotGGUF, []string{"legacy GGJT"}},
		{"binary junk", []byte{0, 1, 2, 3, 4, 5, 6, 7}, gguf.ErrNotGGUF, []string{"not \"GGUF\""}},

		// Header.
		{"version 1", headerWith(1, 0, 0), gguf.ErrUnsupportedVersion, []string{"version 1"}},
		{"version 0", headerWith(0, 0, 0), gguf.ErrUnsupportedVersion, []string{"version 0"}},
		{"version 4", headerWith(4, 0, 0), gguf.ErrUnsupportedVersion, []string{"version 4"}},
		{"big-endian", headerWith(0x03000000, 0, 0), gguf.ErrUnsupportedVersion, []string{"big-endian"}},
		{"absurd tensor count", headerWith(3, 1<<40, 0), gguf.ErrCorrupt, []string{"tensor count", "1099511627776"}},
		{"absurd kv count", headerWith(3, 0, 1<<62), gguf.ErrCorrupt, []string{"metadata count"}},
		{"negative kv count", headerWith(3, 0, 1<<63|5), gguf.ErrCorrupt, []string{"metadata count"}},
		{"kv count beyond file", headerWith(3, 0, 1000), gguf.ErrTruncated, []string{"metadata count", "1000"}},
		{"tensor count beyond file", headerWith(3, 100, 1), gguf.ErrTruncated, []string{"tensor count", "100"}},
		{"counts together beyond file", headerWith(3, 1, 3), gguf.ErrTruncated, []string{"1 tensors and 3 metadata pairs"}},

		// Metadata.
		{"huge string length", (&raw{}).header(0, 1).u64(1 << 40).zeros(64).Bytes(),
			gguf.ErrCorrupt, []string{"kv 0", "key", "length 1099511627776"}},
		{"string past end", (&raw{}).header(0, 1).u64(1000).zeros(64).Bytes(),
			gguf.ErrTruncated, []string{"kv 0", "needs 1000 bytes"}},
		{"empty key", oneKV(func(r *raw) { r.kvU32("", 1) }), gguf.ErrCorrupt, []string{"kv 0", "empty"}},
		{"duplicate key", (&raw{}).header(0, 2).kvU32("a.b", 1).kvU32("a.b", 2).Bytes(),
			gguf.ErrCorrupt, []string{`kv 1 "a.b"`, "duplicate key"}},
		{"unknown value type", oneKV(func(r *raw) { r.str("k").u32(13).u32(0) }),
			gguf.ErrCorrupt, []string{`kv 0 "k"`, "value type 13"}},
		{"nested array", oneKV(func(r *raw) { r.str("k").u32(uint32(gguf.TypeArray)).u32(uint32(gguf.TypeArray)).u64(1) }),
			gguf.ErrCorrupt, []string{`kv 0 "k"`, "array of arrays"}},
		{"unknown array element type", oneKV(func(r *raw) { r.str("k").u32(uint32(gguf.TypeArray)).u32(99).u64(1) }),
			gguf.ErrCorrupt, []string{"element type 99"}},
		{"absurd array length", oneKV(func(r *raw) { r.str("k").u32(uint32(gguf.TypeArray)).u32(uint32(gguf.TypeUint8)).u64(1 << 40) }),
			gguf.ErrCorrupt, []string{"array length"}},
		{"array past end", oneKV(func(r *raw) { r.str("k").u32(uint32(gguf.TypeArray)).u32(uint32(gguf.TypeUint64)).u64(1 << 20) }),
			gguf.ErrTruncated, []string{`kv 0 "k"`, "array length"}},
		{"string array element past end", oneKV(func(r *raw) {
			r.str("k").u32(uint32(gguf.TypeArray)).u32(uint32(gguf.TypeString)).u64(2).str("ok").u64(1 << 20)
		}), gguf.ErrTruncated, []string{`kv 0 "k"`, "element 1"}},
		{"alignment not a power of two", oneKV(func(r *raw) { r.kvU32("general.alignment", 24) }),
			gguf.ErrCorrupt, []string{"general.alignment", "24", "power of two"}},
		{"alignment zero", oneKV(func(r *raw) { r.kvU32("general.alignment", 0) }),
			gguf.ErrCorrupt, []string{"general.alignment", "power of two"}},
		{"alignment not uint32", oneKV(func(r *raw) { r.str("general.alignment").u32(uint32(gguf.TypeUint64)).u64(32) }),
			gguf.ErrCorrupt, []string{"general.alignment", "uint64"}},

		// Tensor table.
		{"empty tensor name", rawModel(func(r *raw) { r.tensor("", gguf.GGMLTypeF32, 0, 4) }, 1, 64),
			gguf.ErrCorrupt, []string{"tensor 0", "name is empty"}},
		{"tensor name too long", rawModel(func(r *raw) { r.tensor(strings.Repeat("x", 64), gguf.GGMLTypeF32, 0, 4) }, 1, 64),
			gguf.ErrCorrupt, []string{"tensor 0", "64 bytes"}},
		{"tensor name with NUL", rawModel(func(r *raw) { r.tensor("a\x00b", gguf.GGMLTypeF32, 0, 4) }, 1, 64),
			gguf.ErrCorrupt, []string{"NUL"}},
		{"duplicate tensor name", rawModel(func(r *raw) {
			r.tensor("w", gguf.GGMLTypeF32, 0, 8).tensor("w", gguf.GGMLTypeF32, 32, 8)
		}, 2, 64), gguf.ErrCorrupt, []string{`tensor 1 "w"`, "duplicate tensor name"}},
		{"zero dimensions", oneTensor(gguf.GGMLTypeF32, 0), gguf.ErrCorrupt, []string{`tensor 0 "t"`, "0 dimensions"}},
		{"too many dimensions", oneTensor(gguf.GGMLTypeF32, 0, 1, 1, 1, 1, 1), gguf.ErrCorrupt, []string{"5 dimensions"}},
		{"dimension 0", oneTensor(gguf.GGMLTypeF32, 0, 4, 0), gguf.ErrCorrupt, []string{`tensor 0 "t"`, "dimension 1 is 0"}},
		{"negative dimension", oneTensor(gguf.GGMLTypeF32, 0, 1<<63), gguf.ErrCorrupt, []string{"dimension 0"}},
		{"element count overflow", oneTensor(gguf.GGMLTypeF32, 0, 1<<32, 1<<32), gguf.ErrCorrupt, []string{"elements"}},
		{"byte size overflow", oneTensor(gguf.GGMLTypeF64, 0, 1<<31, 1<<31), gguf.ErrCorrupt, []string{"bytes"}},
		{"unknown ggml type", oneTensor(99, 0, 4), gguf.ErrUnsupportedTensorType, []string{`tensor 0 "t"`, "ggml type 99"}},
		{"removed type Q4_2", oneTensor(4, 0, 32), gguf.ErrUnsupportedTensorType, []string{"Q4_2", "removed"}},
		{"removed type Q4_0_4_4", oneTensor(31, 0, 32), gguf.ErrUnsupportedTensorType, []string{"Q4_0_4_4", "removed"}},
		{"row not a multiple of the block", oneTensor(gguf.GGMLTypeQ8_0, 0, 33), gguf.ErrCorrupt, []string{"33", "block size 32"}},
		{"misaligned offset", oneTensor(gguf.GGMLTypeF32, 4, 4), gguf.ErrCorrupt, []string{`tensor 0 "t"`, "not a multiple of the alignment"}},
		{"overlapping tensors", rawModel(func(r *raw) {
			r.tensor("a", gguf.GGMLTypeF32, 0, 16).tensor("b", gguf.GGMLTypeF32, 32, 16)
		}, 2, 256), gguf.ErrCorrupt, []string{`tensor 1 "b"`, "overlaps"}},
		{"gap between tensors", rawModel(func(r *raw) {
			r.tensor("a", gguf.GGMLTypeF32, 0, 4).tensor("b", gguf.GGMLTypeF32, 64, 4)
		}, 2, 256), gguf.ErrCorrupt, []string{`tensor 1 "b"`, "offset 64, want 32"}},
		{"offset out of bounds", oneTensor(gguf.GGMLTypeF32, 1<<40, 4), gguf.ErrCorrupt, []string{"offset 1099511627776"}},
		{"data past end of file", rawModel(func(r *raw) { r.tensor("big", gguf.GGMLTypeF32, 0, 1024) }, 1, 100),
			gguf.ErrTruncated, []string{`tensor 0 "big": data [`, "extends past end of file"}},
		{"data section past end of file", (&raw{}).header(1, 0).tensor("t", gguf.GGMLTypeF32, 0, 4).Bytes(),
			gguf.ErrTruncated, []string{"data section"}},

		// Model metadata.
		{"no architecture", withKVs(map[string]gguf.Value{"general.architecture": {}}),
			gguf.ErrInvalidMetadata, []string{"general.architecture is missing"}},
		{"architecture not a string", withKVs(map[string]gguf.Value{"general.architecture": gguf.Uint32(1)}),
			gguf.ErrInvalidMetadata, []string{"general.architecture", "uint32"}},
		{"unsupported architecture", withKVs(map[string]gguf.Value{"general.architecture": gguf.String("gpt5")}),
			gguf.ErrUnsupportedArchitecture, []string{`"gpt5"`}},
		{"tokens not strings", withKVs(map[string]gguf.Value{"tokenizer.ggml.tokens": gguf.Array([]int32{1})}),
			gguf.ErrInvalidMetadata, []string{"tokenizer.ggml.tokens", "int32"}},
		{"vocabulary missing", withKVs(map[string]gguf.Value{"tokenizer.ggml.tokens": {}}),
			gguf.ErrInvalidMetadata, []string{"tokenizer.ggml.tokens", "missing"}},
		{"scores shorter than tokens", withKVs(map[string]gguf.Value{"tokenizer.ggml.scores": gguf.Array([]float32{1, 2})}),
			gguf.ErrInvalidMetadata, []string{"tokenizer.ggml.scores has 2 entries", "8 tokens"}},
		{"token types longer than tokens", withKVs(map[string]gguf.Value{"tokenizer.ggml.token_type": gguf.Array(make([]int32, 9))}),
			gguf.ErrInvalidMetadata, []string{"tokenizer.ggml.token_type has 9 entries"}},
		{"scores of the wrong type", withKVs(map[string]gguf.Value{"tokenizer.ggml.scores": gguf.Array(make([]float64, 8))}),
			gguf.ErrInvalidMetadata, []string{"tokenizer.ggml.scores", "float64"}},
		{"bos id out of range", withKVs(map[string]gguf.Value{"tokenizer.ggml.bos_token_id": gguf.Uint32(8)}),
			gguf.ErrInvalidMetadata, []string{"tokenizer.ggml.bos_token_id is 8", "8 tokens"}},
		{"negative eos id", withKVs(map[string]gguf.Value{"tokenizer.ggml.eos_token_id": gguf.Int32(-1)}),
			gguf.ErrInvalidMetadata, []string{"tokenizer.ggml.eos_token_id is -1"}},
		{"no blocks", withKVs(map[string]gguf.Value{"llama.block_count": gguf.Uint32(0)}),
			gguf.ErrInvalidMetadata, []string{"llama.block_count is 0"}},
		{"too many blocks", withKVs(map[string]gguf.Value{"llama.block_count": gguf.Uint32(100000)}),
			gguf.ErrInvalidMetadata, []string{"llama.block_count is 100000"}},
		{"more experts used than exist", withKVs(map[string]gguf.Value{
			"llama.expert_count": gguf.Uint32(4), "llama.expert_used_count": gguf.Uint32(8),
		}), gguf.ErrInvalidMetadata, []string{"llama.expert_used_count is 8"}},
		{"experts never used", withKVs(map[string]gguf.Value{"llama.expert_count": gguf.Uint32(4)}),
			gguf.ErrInvalidMetadata, []string{"llama.expert_count is 4"}},
		{"more MTP layers than blocks", withKVs(map[string]gguf.Value{"llama.nextn_predict_layers": gguf.Uint32(2)}),
			gguf.ErrInvalidMetadata, []string{"llama.nextn_predict_layers is 2"}},
		{"expert groups do not divide", withKVs(map[string]gguf.Value{
			"llama.expert_count": gguf.Uint32(8), "llama.expert_used_count": gguf.Uint32(2),
			"llama.expert_group_count": gguf.Uint32(3), "llama.expert_group_used_count": gguf.Uint32(1),
		}), gguf.ErrInvalidMetadata, []string{"8 experts do not split into 3 groups"}},
		{"unknown rope scaling", withKVs(map[string]gguf.Value{"llama.rope.scaling.type": gguf.String("magic")}),
			gguf.ErrInvalidMetadata, []string{"llama.rope.scaling.type", `"magic"`}},
		// llama.cpp refuses an unknown tokenizer only after reading keys it
		// assumes the named one has; a charsmap that is not a byte array
		// fails a GGML_ASSERT (the process aborts), and a blob size past
		// its end is read out of bounds.
		{"unknown tokenizer model", withKVs(map[string]gguf.Value{"tokenizer.ggml.model": gguf.String("sentencepiece2")}),
			gguf.ErrInvalidMetadata, []string{"tokenizer.ggml.model", `"sentencepiece2"`, "llama, gpt2"}},
		{"charsmap not an array", withKVs(map[string]gguf.Value{"tokenizer.ggml.precompiled_charsmap": gguf.String("xyz")}),
			gguf.ErrInvalidMetadata, []string{"tokenizer.ggml.precompiled_charsmap", "uint8 or int8"}},
		{"charsmap of int32", withKVs(map[string]gguf.Value{"tokenizer.ggml.precompiled_charsmap": gguf.Array([]int32{1, 2, 3, 4})}),
			gguf.ErrInvalidMetadata, []string{"tokenizer.ggml.precompiled_charsmap", "int32"}},
		{"charsmap shorter than its size", withKVs(map[string]gguf.Value{"tokenizer.ggml.precompiled_charsmap": gguf.Array([]uint8{1, 2})}),
			gguf.ErrInvalidMetadata, []string{"too short"}},
		{"charsmap blob past its end", withKVs(map[string]gguf.Value{"tokenizer.ggml.precompiled_charsmap": gguf.Array([]uint8{200, 0, 0, 0, 1, 2, 3})}),
			gguf.ErrInvalidMetadata, []string{"200-byte blob in 7 bytes"}},

		// Truncation of a valid file, in the metadata and in the data.
		{"truncated in metadata", valid[:400], gguf.ErrTruncated, []string{"kv "}},
		{"truncated in tensor data", valid[:len(valid)-100], gguf.ErrTruncated, []string{"extends past end of file"}},
	}
}

func TestReadMalformed(t *testing.T) {
	for _, tc := range malformedCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			f, err := read(tc.data)
			if err == nil {
				t.Fatalf("Read accepted the file: %+v", f.Metadata())
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %q does not wrap %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "gguf: ") {
				t.Errorf("error %q lacks the gguf: prefix", err)
			}
			if m := missing(err.Error(), tc.msg...); len(m) > 0 {
				t.Errorf("error %q does not mention %q", err, m)
			}
		})
	}
}

// TestReadTruncatedEverywhere cuts a valid file at every offset before
// the end of its last tensor's data: each must be ErrTruncated, never
// another error, and never accepted.
func TestReadTruncatedEverywhere(t *testing.T) {
	data := validModel(t)
	f, err := read(data)
	if err != nil {
		t.Fatal(err)
	}
	last := f.Tensors()[len(f.Tensors())-1]
	end := f.DataOffset + int64(last.Offset+last.Size)
	for n := int64(0); n < end; n++ {
		if _, err := read(data[:n]); !errors.Is(err, gguf.ErrTruncated) {
			t.Fatalf("cut at %d of %d: error %v, want %v", n, len(data), err, gguf.ErrTruncated)
		}
	}
	// Padding after the last tensor is optional: llama.cpp's loader only
	// needs the data itself inside the file.
	for n := end; n <= int64(len(data)); n++ {
		if _, err := read(data[:n]); err != nil {
			t.Fatalf("cut at %d, after the data ends at %d: %v", n, end, err)
		}
	}
}

func TestReadAccepts(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"small model", validModel(t)},
		{"no tensors", write(t, modelKVs(nil), nil)},
		{"no tokenizer", write(t, []gguf.KV{{Key: "general.architecture", Value: gguf.String("qwen3")}}, modelTensors())},
		{"alignment 1", write(t, modelKVs(map[string]gguf.Value{"general.alignment": gguf.Uint32(1)}), modelTensors())},
		{"alignment 4096", write(t, modelKVs(map[string]gguf.Value{"general.alignment": gguf.Uint32(4096)}), modelTensors())},
		{"tokenizer none", write(t, modelKVs(map[string]gguf.Value{
			"tokenizer.ggml.model": gguf.String("none"), "tokenizer.ggml.tokens": {},
		}), nil)},
		{"charsmap of int8", write(t, modelKVs(map[string]gguf.Value{"tokenizer.ggml.precompiled_charsmap": gguf.Array([]int8{2, 0, 0, 0, 9, 9, 1})}), nil)},
		{"empty charsmap", write(t, modelKVs(map[string]gguf.Value{"tokenizer.ggml.precompiled_charsmap": gguf.Array([]uint8{})}), nil)},
		{"special id as int32", write(t, modelKVs(map[string]gguf.Value{"tokenizer.ggml.bos_token_id": gguf.Int32(1)}), nil)},
		// Real converters write a padding id one past the vocabulary;
		// llama.cpp only warns, so ember accepts it too.
		{"padding id past the vocabulary", write(t, modelKVs(map[string]gguf.Value{"tokenizer.ggml.padding_token_id": gguf.Uint32(8)}), nil)},
		{"per-layer head counts", write(t, modelKVs(map[string]gguf.Value{"llama.attention.head_count": gguf.Array([]uint32{4})}), nil)},
		{"experts", write(t, modelKVs(map[string]gguf.Value{
			"llama.expert_count": gguf.Uint32(8), "llama.expert_used_count": gguf.Uint32(2),
		}), nil)},
		{"version 2", func() []byte {
			b := validModel(t)
			b[4] = 2
			return b
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := read(tc.data); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestParseSkipsModelChecks shows Parse, unlike Read, returns a file of an
// architecture llama.cpp cannot load, for inspection, and Validate then
// says why it cannot be run.
func TestParseSkipsModelChecks(t *testing.T) {
	data := write(t, modelKVs(map[string]gguf.Value{"general.architecture": gguf.String("gpt5")}), modelTensors())
	f, err := gguf.Parse(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Metadata().Architecture; got != "gpt5" {
		t.Errorf("architecture %q, want gpt5", got)
	}
	if err := f.Validate(); !errors.Is(err, gguf.ErrUnsupportedArchitecture) {
		t.Errorf("Validate: %v, want %v", err, gguf.ErrUnsupportedArchitecture)
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.gguf")
	if err := os.WriteFile(path, validModel(t), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.Tensors()); n != 4 {
		t.Errorf("%d tensors, want 4", n)
	}

	bad := filepath.Join(dir, "bad.gguf")
	if err := os.WriteFile(bad, []byte("GGUF"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = gguf.Open(bad)
	if !errors.Is(err, gguf.ErrTruncated) || !strings.Contains(err.Error(), bad) {
		t.Errorf("Open(truncated): %v, want ErrTruncated naming the path", err)
	}
	if _, err := gguf.Open(dir); !errors.Is(err, gguf.ErrNotGGUF) {
		t.Errorf("Open(directory): %v, want ErrNotGGUF", err)
	}
	if _, err := gguf.Open(filepath.Join(dir, "absent.gguf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(absent): %v, want ErrNotExist", err)
	}
}

// TestReadBoundsAllocation checks that files announcing huge contents
// cost memory in proportion to their real size, not to what they claim.
func TestReadBoundsAllocation(t *testing.T) {
	for _, tc := range malformedCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			allocated := allocatedBytes(func() { read(tc.data) })
			if limit := allocationLimit(len(tc.data)); allocated > limit {
				t.Errorf("reading %d bytes allocated %d bytes, more than %d", len(tc.data), allocated, limit)
			}
		})
	}
}

func TestTensorData(t *testing.T) {
	data := validModel(t)
	f, err := read(data)
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(data)
	for i, ti := range f.Tensors() {
		got := make([]byte, ti.Size)
		if _, err := f.TensorData(r, ti).ReadAt(got, 0); err != nil {
			t.Fatal(err)
		}
		if want := patternBytes(byte(i+1), ti.Size); !bytes.Equal(got, want) {
			t.Errorf("tensor %q: data differs", ti.Name)
		}
		if ti.Offset%uint64(f.Alignment) != 0 {
			t.Errorf("tensor %q: offset %d not aligned", ti.Name, ti.Offset)
		}
	}
	if f.DataOffset%int64(f.Alignment) != 0 {
		t.Errorf("data offset %d not aligned", f.DataOffset)
	}
}
