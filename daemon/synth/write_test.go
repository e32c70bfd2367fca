package synth_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ember-edge/ember/daemon/gguf"
	"github.com/ember-edge/ember/daemon/synth"
)

// writeSpec writes spec into a fresh temp dir and returns the path.
func writeSpec(t testing.TB, spec synth.Spec) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "model.gguf")
	if err := synth.Write(path, spec, nil); err != nil {
		t.Fatal(err)
	}
	return path
}

func fileHash(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestTinyIsValid(t *testing.T) {
	path := writeSpec(t, synth.Tiny)
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	m := f.Metadata()
	want := gguf.Metadata{
		Architecture: "llama", Name: "ember-synth-tiny", License: "MIT",
		Description: m.Description,
		FileType:    uint32(gguf.FileTypeF16), FileTypeName: "F16", Quantization: "F16",
		ParameterCount: synth.Tiny.ParameterCount(),
		TensorCount:    3 + 9*synth.Tiny.BlockCount,
		TensorBytes:    synth.Tiny.TensorBytes(),
		ContextLength:  512, EmbeddingLength: 64, BlockCount: 2, HeadCount: 4, HeadCountKV: 2,
		FeedForwardLength: 128,
		VocabSize:         synth.VocabSize(), TokenizerModel: "llama", ChatTemplate: synth.ChatML,
	}
	if m != want {
		t.Errorf("metadata:\n got %+v\nwant %+v", m, want)
	}
	if st, _ := os.Stat(path); st.Size() > 2<<20 || st.Mode().Perm() != 0o644 {
		t.Errorf("file is %d bytes, mode %v; want at most 2 MiB, 0644", st.Size(), st.Mode())
	}
	if norm, _ := f.Tensor("blk.1.ffn_norm.weight"); norm.Type != gguf.GGMLTypeF32 {
		t.Errorf("norm weights are %s, want F32", norm.Type)
	}
	if k, _ := f.Tensor("blk.0.attn_k.weight"); k.Shape[0] != 64 || k.Shape[1] != 32 {
		t.Errorf("attn_k shape %v, want [64 32] (2 KV heads of 16)", k.Shape)
	}
}

func TestWriteIsDeterministic(t *testing.T) {
	a := fileHash(t, writeSpec(t, synth.Tiny))
	if b := fileHash(t, writeSpec(t, synth.Tiny)); a != b {
		t.Fatalf("two writes of Tiny differ: %s, %s", a, b)
	}
	// Weights are generated in parallel, one stream per chunk: the
	// number of cores must not change the file.
	prev := runtime.GOMAXPROCS(1)
	serial := fileHash(t, writeSpec(t, synth.Tiny))
	runtime.GOMAXPROCS(prev)
	if serial != a {
		t.Fatalf("GOMAXPROCS=1 gives %s, %d gives %s", serial, prev, a)
	}
	reseeded := synth.Tiny
	reseeded.Seed++
	if c := fileHash(t, writeSpec(t, reseeded)); c == a {
		t.Error("another seed gave the same file")
	}
	// The hash is pinned so that a change to the generator, the
	// vocabulary or the writer is noticed: benchmarks compare runs on
	// files that must stay the same. If you changed one on purpose,
	// update the hash.
	const tinyHash = "0a66dd8c53011daab3e482eb7014f4b159e380f2ac12f1a7a57b199c11302ff1"
	if a != tinyHash {
		t.Errorf("Tiny's sha256 is %s, was %s", a, tinyHash)
	}
}

func TestWriteF32(t *testing.T) {
	spec := synth.Tiny
	spec.FileType = gguf.FileTypeF32
	f, err := gguf.Open(writeSpec(t, spec))
	if err != nil {
		t.Fatal(err)
	}
	if m := f.Metadata(); m.FileTypeName != "F32" || m.Quantization != "F32" || m.TensorBytes != 2*synth.Tiny.TensorBytes()-normBytes(synth.Tiny) {
		t.Errorf("F32 model: %+v", m)
	}
}

// normBytes is the size of a spec's F32 norm weights, the same in F16 and
// F32 models.
func normBytes(s synth.Spec) uint64 {
	return uint64(4 * s.EmbeddingLength * (2*s.BlockCount + 1))
}

func TestWriteProgressAndAtomicity(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.gguf")
	var calls int
	var last, total int64
	err := synth.Write(path, synth.Tiny, func(done, all int64) {
		if done < last || all != int64(synth.Tiny.TensorBytes()) {
			t.Fatalf("progress %d/%d after %d", done, all, last)
		}
		calls++
		last, total = done, all
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls == 0 || last != total {
		t.Errorf("%d progress calls, ending at %d of %d", calls, last, total)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "m.gguf" {
		t.Errorf("directory holds %v, want only m.gguf", entries)
	}

	bad := synth.Tiny
	bad.HeadCount = 5
	err = synth.Write(filepath.Join(dir, "bad.gguf"), bad, nil)
	if !errors.Is(err, synth.ErrInvalidSpec) {
		t.Errorf("Write(bad spec): %v, want ErrInvalidSpec", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("a failed write left %v", entries)
	}
	if err := synth.Write(filepath.Join(dir, "missing", "m.gguf"), synth.Tiny, nil); err == nil {
		t.Error("Write into a missing directory succeeded")
	}
}

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*synth.Spec)
		msgs []string
	}{
		{"tiny", func(*synth.Spec) {}, nil},
		{"bench", func(s *synth.Spec) { *s = synth.Bench }, nil},
		{"zero fields", func(s *synth.Spec) { *s = synth.Spec{FileType: gguf.FileTypeF16} },
			[]string{"embedding length is 0", "block count is 0", "context length is 0"}},
		{"heads do not divide", func(s *synth.Spec) { s.HeadCount = 5 }, []string{"not a multiple of the head count 5"}},
		{"kv heads do not divide", func(s *synth.Spec) { s.HeadCountKV = 3 }, []string{"KV head count 3"}},
		{"odd head dim", func(s *synth.Spec) { s.EmbeddingLength, s.HeadCount, s.HeadCountKV = 60, 4, 4 }, []string{"head dimension 15 is odd"}},
		{"quantized", func(s *synth.Spec) { s.FileType = gguf.FileTypeQ8_0 }, []string{"use llamacpp.Quantize"}},
		{"too deep", func(s *synth.Spec) { s.BlockCount = 1000 }, []string{"512"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := synth.Tiny
			tc.edit(&s)
			err := s.Validate()
			if len(tc.msgs) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, synth.ErrInvalidSpec) {
				t.Fatalf("Validate: %v, want ErrInvalidSpec", err)
			}
			for _, m := range tc.msgs {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

// TestBenchArithmetic checks Bench's shapes without writing its 220 MB.
func TestBenchArithmetic(t *testing.T) {
	b := synth.Bench
	if b.HeadDim() != 64 || b.HeadCount/b.HeadCountKV != 3 {
		t.Errorf("head dim %d, group %d; want SmolLM2-135M's 64 and 3", b.HeadDim(), b.HeadCount/b.HeadCountKV)
	}
	vocab := uint64(synth.VocabSize())
	perBlock := uint64(576*576*2 + 576*192*2 + 3*576*1536 + 2*576)
	want := 2*576*vocab + 30*perBlock + 576
	if got := b.ParameterCount(); got != want {
		t.Errorf("ParameterCount %d, want %d", got, want)
	}
	if got, want := b.TensorBytes(), 2*want+normBytes(b)/2; got != want {
		t.Errorf("TensorBytes %d, want %d (F16, norms F32)", got, want)
	}
	if p := b.ParameterCount(); p < 100e6 || p > 120e6 {
		t.Errorf("%d parameters, want about 110M", p)
	}
	// The K-quant fallback Bench's documentation describes.
	if b.EmbeddingLength%256 == 0 || b.FeedForwardLength%256 != 0 {
		t.Error("Bench's rows no longer mix K-quant and fallback sizes; update its doc comment")
	}
}
