// Package libdir finds the llama.cpp shared libraries on disk: where
// emberd looks, and what a directory must hold to be usable. It does not
// load them (package llamacpp does), so tools and tests that only need to
// know where the libraries are do not link the binding.
package libdir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// EnvLibDir names the environment variable that points at a library
// directory; it is consulted when the config sets no llama.lib_dir.
const EnvLibDir = "EMBER_LLAMA_LIB"

// ErrLibraryNotFound is returned when no directory holds a usable set of
// llama.cpp libraries.
var ErrLibraryNotFound = errors.New("llama.cpp libraries not found")

// required are the files yzma opens by name; a directory without all of
// them cannot work.
var required = []string{"libllama.so", "libggml.so", "libggml-base.so"}

// Candidate is one directory that may hold the libraries, and why it was
// considered.
type Candidate struct {
	Dir  string
	From string
}

// Candidates lists, in order, where Resolve looks. An explicit choice (the
// config's llama.lib_dir, else EMBER_LLAMA_LIB) is the only candidate: a
// wrong explicit path is an error, never a silent fall back to another set.
func Candidates(configured string) []Candidate {
	if configured != "" {
		return []Candidate{{configured, "config llama.lib_dir"}}
	}
	if env := os.Getenv(EnvLibDir); env != "" {
		return []Candidate{{env, EnvLibDir}}
	}
	var cs []Candidate
	if exe, err := os.Executable(); err == nil {
		// bin/emberd finds lib/ember/llama beside bin/, which is both
		// `make llama-libs` in a checkout and `make install` under a prefix.
		dir := filepath.Join(filepath.Dir(exe), "..", "lib", "ember", "llama")
		cs = append(cs, Candidate{filepath.Clean(dir), "next to the executable"})
	}
	cs = append(cs,
		Candidate{"/usr/local/lib/ember/llama", "default"},
		Candidate{"/usr/lib/ember/llama", "default"},
	)
	return cs
}

// Resolve returns the first candidate directory that holds the libraries.
func Resolve(configured string) (string, error) {
	var tried []string
	for _, c := range Candidates(configured) {
		missing := Missing(c.Dir)
		if len(missing) == 0 {
			return c.Dir, nil
		}
		tried = append(tried, fmt.Sprintf("%s (%s: missing %s)", c.Dir, c.From, strings.Join(missing, ", ")))
	}
	return "", fmt.Errorf("%w; tried %s; install them with `make llama-libs` "+
		"or point llama.lib_dir (or %s) at a directory holding %s",
		ErrLibraryNotFound, strings.Join(tried, "; "), EnvLibDir, strings.Join(required, ", "))
}

// Missing lists the required files, and a CPU backend, that dir lacks.
func Missing(dir string) []string {
	var missing []string
	for _, name := range required {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			missing = append(missing, name)
		}
	}
	// ggml loads its compute backends as separate libraries; without one
	// no model can load, so a directory without any is not usable.
	if cpu, _ := filepath.Glob(filepath.Join(dir, "libggml-cpu*.so")); len(cpu) == 0 {
		missing = append(missing, "libggml-cpu*.so")
	}
	return missing
}
