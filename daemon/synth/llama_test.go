package synth_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ember-edge/ember/daemon/gguf"
	"github.com/ember-edge/ember/daemon/llamacpp"
	"github.com/ember-edge/ember/daemon/synth"
	"github.com/ember-edge/ember/internal/testkit/llamatest"
	"github.com/hybridgroup/yzma/pkg/llama"
)

// tinyPath is one Tiny model shared by the tests that only read it.
var tinyPath = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "synth-test-")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "tiny.gguf")
	return path, synth.Write(path, synth.Tiny, nil)
})

func TestMain(m *testing.M) {
	code := m.Run()
	if path, err := tinyPath(); err == nil {
		os.RemoveAll(filepath.Dir(path))
	}
	os.Exit(code)
}

// loadTiny loads the shared Tiny model into llama.cpp.
func loadTiny(t *testing.T) llama.Model {
	t.Helper()
	path, err := tinyPath()
	if err != nil {
		t.Fatal(err)
	}
	return loadModel(t, path)
}

func loadModel(t *testing.T, path string) llama.Model {
	t.Helper()
	llamatest.Load(t)
	if _, err := gguf.Open(path); err != nil {
		t.Fatalf("not handing llama.cpp an invalid file: %v", err)
	}
	m, err := llama.ModelLoadFromFile(path, llama.ModelDefaultParams())
	if err != nil {
		t.Fatalf("llama.cpp cannot load %s: %v", path, err)
	}
	t.Cleanup(func() { llama.ModelFree(m) })
	return m
}

func piece(v llama.Vocab, tok llama.Token) string {
	buf := make([]byte, 64)
	n := llama.TokenToPiece(v, tok, buf, 0, true)
	return string(buf[:max(n, 0)])
}

func TestTokenizesWholeWords(t *testing.T) {
	v := llama.ModelGetVocab(loadTiny(t))
	if n := llama.VocabNTokens(v); int(n) != synth.VocabSize() {
		t.Fatalf("llama.cpp sees %d tokens, want %d", n, synth.VocabSize())
	}
	toks := llama.Tokenize(v, "the quick brown fox", true, false)
	var pieces []string
	for _, tok := range toks {
		pieces = append(pieces, piece(v, tok))
	}
	want := []string{"<s>", " the", " quick", " brown", " fox"}
	if !slices.Equal(pieces, want) {
		t.Errorf("pieces %q, want %q", pieces, want)
	}
	if toks[0] != llama.VocabBOS(v) || llama.VocabEOS(v) != 2 {
		t.Errorf("BOS %d, EOS %d", llama.VocabBOS(v), llama.VocabEOS(v))
	}
}

func TestNonASCIIRoundTrips(t *testing.T) {
	v := llama.ModelGetVocab(loadTiny(t))
	for _, text := range []string{
		"Grüße aus Köln",
		"日本語のテキスト",
		"emoji 🙂 and tabs\tand\nnewlines",
		"the world, quickly!",
	} {
		toks := llama.Tokenize(v, text, false, false)
		if len(toks) == 0 {
			t.Fatalf("%q: no tokens", text)
		}
		for _, tok := range toks {
			if tok == 0 {
				t.Errorf("%q: tokenized to <unk>; byte fallback should cover everything", text)
			}
		}
		if got := llama.Detokenize(v, toks, false, false); got != text {
			t.Errorf("round trip of %q gave %q", text, got)
		}
	}
}

// generate decodes prompt and then greedily n more tokens in a fresh
// context.
func generate(t *testing.T, m llama.Model, prompt string, n int) []llama.Token {
	t.Helper()
	params := llama.ContextDefaultParams()
	params.NCtx = 128
	params.NBatch = 128
	params.NThreads, params.NThreadsBatch = 2, 2
	ctx, err := llama.InitFromModel(m, params)
	if err != nil {
		t.Fatal(err)
	}
	defer llama.Free(ctx)
	sampler := llama.SamplerChainInit(llama.SamplerChainDefaultParams())
	defer llama.SamplerFree(sampler)
	llama.SamplerChainAdd(sampler, llama.SamplerInitGreedy())

	v := llama.ModelGetVocab(m)
	batch := llama.BatchGetOne(llama.Tokenize(v, prompt, true, false))
	var out []llama.Token
	for len(out) < n {
		if _, err := llama.Decode(ctx, batch); err != nil {
			t.Fatalf("decode after %d tokens: %v", len(out), err)
		}
		tok := llama.SamplerSample(sampler, ctx, -1)
		if tok < 0 || int(tok) >= synth.VocabSize() {
			t.Fatalf("sampled token %d outside the vocabulary", tok)
		}
		out = append(out, tok)
		batch = llama.BatchGetOne([]llama.Token{tok})
	}
	return out
}

func TestGenerationIsDeterministic(t *testing.T) {
	m := loadTiny(t)
	a := generate(t, m, "hello world", 20)
	b := generate(t, m, "hello world", 20)
	if !slices.Equal(a, b) {
		t.Errorf("two greedy runs differ:\n%v\n%v", a, b)
	}
}

func TestChatTemplate(t *testing.T) {
	m := loadTiny(t)
	tmpl := llama.ModelChatTemplate(m, "")
	if tmpl != synth.ChatML {
		t.Fatalf("model's chat template is %q", tmpl)
	}
	msgs := []llama.ChatMessage{
		llama.NewChatMessage("system", "You are terse."),
		llama.NewChatMessage("user", "hello"),
	}
	buf := make([]byte, 1024)
	n := llama.ChatApplyTemplate(tmpl, msgs, true, buf)
	want := "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n"
	if n < 0 || string(buf[:n]) != want {
		t.Errorf("rendered %q (%d), want %q", buf[:max(n, 0)], n, want)
	}
	// The markers are control tokens, one each.
	v := llama.ModelGetVocab(m)
	toks := llama.Tokenize(v, want, false, true)
	if toks[0] != 3 || !llama.VocabIsControl(v, toks[0]) || !slices.Contains(toks, 4) || !llama.VocabIsEOG(v, 4) {
		t.Errorf("ChatML markers not tokenized as control tokens: %v", toks)
	}
}

func TestQuantizeQ8(t *testing.T) {
	llamatest.Load(t)
	in, err := tinyPath()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "q8.gguf")
	if err := llamacpp.Quantize(in, out, "q8_0"); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	if m := f.Metadata(); m.FileTypeName != "Q8_0" || m.Quantization != "Q8_0" || m.VocabSize != synth.VocabSize() {
		t.Errorf("quantized metadata %+v", m)
	}
	generate(t, loadModel(t, out), "the quick brown fox", 5)
}

// TestQuantizeBenchShapes quantizes a one-block model with Bench's shapes
// to Q4_K_M, checking the fallback Bench's documentation describes: its
// 576-long rows cannot take K-quants, ffn_down's 1536-long rows can.
func TestQuantizeBenchShapes(t *testing.T) {
	llamatest.Load(t)
	spec := synth.Bench
	spec.BlockCount, spec.ContextLength = 1, 256
	in := writeSpec(t, spec)
	out := filepath.Join(filepath.Dir(in), "q4km.gguf")
	if err := llamacpp.Quantize(in, out, "Q4_K_M"); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]gguf.GGMLType{}
	for _, ti := range f.Tensors() {
		types[ti.Name] = ti.Type
	}
	if typ := types["blk.0.attn_q.weight"]; typ.BlockSize() != 32 {
		t.Errorf("attn_q (rows of 576) quantized to %s, want a 32-block fallback", typ)
	}
	if typ := types["blk.0.ffn_down.weight"]; typ.BlockSize() != 256 {
		t.Errorf("ffn_down (rows of 1536) quantized to %s, want a K-quant", typ)
	}
	if m := f.Metadata(); m.FileTypeName != "Q4_K_M" {
		t.Errorf("file type %s", m.FileTypeName)
	}
	generate(t, loadModel(t, out), "hello", 3)
}

func TestQuantizeErrors(t *testing.T) {
	llamatest.Load(t)
	in, err := tinyPath()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	notModel := filepath.Join(dir, "not.gguf")
	os.WriteFile(notModel, []byte("<html>"), 0o644)
	tests := []struct {
		name, in, fileType string
		want               error
	}{
		{"unknown type", in, "Q9_9", llamacpp.ErrUnknownFileType},
		{"needs imatrix", in, "IQ2_XXS", llamacpp.ErrNeedsImportanceMatrix},
		{"invalid input", notModel, "Q8_0", gguf.ErrNotGGUF},
		{"missing input", filepath.Join(dir, "absent.gguf"), "Q8_0", os.ErrNotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, tc.name+".gguf")
			err := llamacpp.Quantize(tc.in, out, tc.fileType)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Quantize: %v, want %v", err, tc.want)
			}
			if _, statErr := os.Stat(out); !errors.Is(statErr, os.ErrNotExist) {
				t.Errorf("a failed quantization left %s", out)
			}
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("failed quantizations left temporary files: %v", entries)
	}
}

// TestGGUFTablesMatchLibrary checks package gguf's ggml type and file
// type tables against the llama.cpp libraries actually installed, so an
// upgrade that changes them is noticed.
func TestGGUFTablesMatchLibrary(t *testing.T) {
	llamatest.Load(t)
	for typ := gguf.GGMLType(0); typ < gguf.GGMLTypeCount; typ++ {
		lt := llama.GGMLType(typ)
		if !typ.Known() {
			if llama.GGMLBlockSize(lt) != 0 {
				t.Errorf("type %d: gguf says removed, the library has block size %d", uint32(typ), llama.GGMLBlockSize(lt))
			}
			continue
		}
		if bs, ts := llama.GGMLBlockSize(lt), llama.GGMLTypeSize(lt); uint64(bs) != typ.BlockSize() || ts != typ.TypeSize() {
			t.Errorf("%s: gguf has block %d size %d, the library %d and %d", typ, typ.BlockSize(), typ.TypeSize(), bs, ts)
		}
		if name := llama.GGMLTypeName(lt); !strings.EqualFold(name, typ.String()) {
			t.Errorf("type %d: gguf calls it %s, the library %s", uint32(typ), typ, name)
		}
	}
	for _, name := range gguf.FileTypeNames() {
		ft, _ := gguf.ParseFileType(name)
		if desc := llama.FtypeName(llama.Ftype(ft)); strings.HasPrefix(desc, "unknown") {
			t.Errorf("file type %s (%d) is unknown to the library", name, uint32(ft))
		}
	}
}
