// Package testkit holds helpers shared by ember's tests: where the llama.cpp
// libraries and the reference models are, found the same way in every
// package.
package testkit

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/ember-edge/ember/daemon/llamacpp/libdir"
	"github.com/ember-edge/ember/daemon/synth"
)

// RepoRoot returns the repository's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// LibDir returns the directory of llama.cpp libraries tests load: the one
// EMBER_LLAMA_LIB names, else lib/ember/llama in the checkout. A missing
// set fails the test with the command that installs it; tests never skip
// real inference.
func LibDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(libdir.EnvLibDir)
	if dir == "" {
		dir = filepath.Join(RepoRoot(), "lib", "ember", "llama")
	}
	if missing := libdir.Missing(dir); len(missing) > 0 {
		t.Fatalf("llama.cpp libraries missing in %s (%v): run `make llama-libs` (make test does)", dir, missing)
	}
	return dir
}

// SharedModel returns the path of a reference model in ../shared/models,
// and false when that folder or file is absent. Tests use it to cross-check
// against files written by llama.cpp's own tools, never depend on it.
func SharedModel(name string) (string, bool) {
	p := filepath.Join(RepoRoot(), "..", "shared", "models", name)
	if _, err := os.Stat(p); err != nil {
		return "", false
	}
	return p, true
}

// WriteModel writes a synthetic model of spec into the test's temp dir
// and returns its path.
func WriteModel(t testing.TB, spec synth.Spec) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "model.gguf")
	if err := synth.Write(path, spec, nil); err != nil {
		t.Fatal(err)
	}
	return path
}

// TinyModel writes synth.Tiny and returns its path.
func TinyModel(t testing.TB) string {
	t.Helper()
	return WriteModel(t, synth.Tiny)
}

// SHA256File returns the hex sha256 of a file.
func SHA256File(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
