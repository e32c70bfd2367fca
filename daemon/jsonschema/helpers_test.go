package jsonschema

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/hybridgroup/yzma/pkg/llama"

	"github.com/ember-edge/ember/daemon/synth"
	"github.com/ember-edge/ember/internal/testkit/llamatest"
)

// modelDir holds the synthetic models the tests share; TestMain removes
// it.
var modelDir = sync.OnceValues(func() (string, error) { return os.MkdirTemp("", "jsonschema-test-") })

func TestMain(m *testing.M) {
	code := m.Run()
	if dir, err := modelDir(); err == nil {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// e2eSpec is synth.Tiny trained for a context that holds a prompt and the
// longest document the end-to-end schemas allow.
var e2eSpec = func() synth.Spec { s := synth.Tiny; s.ContextLength = 2048; return s }()

var modelPath = sync.OnceValues(func() (string, error) {
	dir, err := modelDir()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "tiny.gguf")
	return path, synth.Write(path, e2eSpec, nil)
})

func sharedModel(t testing.TB) string {
	t.Helper()
	path, err := modelPath()
	if err != nil {
		t.Fatal(err)
	}
	return path
}

var (
	vocabOnce sync.Once
	vocab     llama.Vocab
)

// tinyVocab loads the synthetic model into llama.cpp once, for its
// grammar parser: llama_sampler_init_grammar needs a vocabulary.
func tinyVocab(t testing.TB) llama.Vocab {
	t.Helper()
	llamatest.Load(t)
	path := sharedModel(t)
	vocabOnce.Do(func() {
		m, err := llama.ModelLoadFromFile(path, llama.ModelDefaultParams())
		if err != nil || m == 0 {
			return
		}
		// The model stays loaded for the test binary's life.
		vocab = llama.ModelGetVocab(m)
	})
	if vocab == 0 {
		t.Fatal("llama.cpp could not load the synthetic model")
	}
	return vocab
}

// checkGrammar fails the test unless llama.cpp's own parser accepts the
// grammar and so does the test reader in gbnf_test.go (which the fuzz
// targets rely on, so it must agree).
func checkGrammar(t testing.TB, grammar string) *gbnf {
	t.Helper()
	g, err := parseGBNF(grammar)
	if err != nil {
		t.Fatalf("grammar does not read: %v\n%s", err, grammar)
	}
	s := llama.SamplerInitGrammar(tinyVocab(t), grammar, "root")
	if s == 0 {
		t.Fatalf("llama.cpp does not parse the grammar (its error is on stderr):\n%s", grammar)
	}
	llama.SamplerFree(s)
	return g
}

// mustCompile compiles a schema and checks its grammar with llama.cpp.
func mustCompile(t testing.TB, opts Options, schema string) (*Schema, *gbnf) {
	t.Helper()
	s, err := opts.Compile([]byte(schema))
	if err != nil {
		t.Fatalf("compile %s: %v", schema, err)
	}
	return s, checkGrammar(t, s.Grammar())
}
