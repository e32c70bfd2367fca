package llamacpp

import (
	"errors"

	"github.com/ember-edge/ember/daemon/llamacpp/libdir"
)

// EnvLibDir names the environment variable that points at a library
// directory; it is consulted when the config sets no llama.lib_dir.
const EnvLibDir = libdir.EnvLibDir

var (
	// ErrLibraryNotFound is returned when no directory holds a usable set
	// of llama.cpp libraries.
	ErrLibraryNotFound = libdir.ErrLibraryNotFound

	// ErrNotLoaded is returned by calls that need the libraries before
	// Load succeeded: calling into them would crash the process.
	ErrNotLoaded = errors.New("llama.cpp libraries not loaded")

	// ErrUnknownFileType is returned by Quantize for a file type name that
	// llama.cpp does not define.
	ErrUnknownFileType = errors.New("unknown file type")

	// ErrNeedsImportanceMatrix is returned by Quantize for the very low-bit
	// file types (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, Q2_K_S) that
	// llama.cpp refuses to produce without an importance matrix.
	ErrNeedsImportanceMatrix = errors.New("file type needs an importance matrix")

	// ErrQuantizeFailed is returned when llama.cpp's quantizer reports a
	// failure; llama.cpp logs the reason.
	ErrQuantizeFailed = errors.New("llama.cpp quantization failed")
)

// Candidate is one directory that may hold the libraries, and why it was
// considered.
type Candidate = libdir.Candidate

// Candidates lists, in order, where Resolve looks.
func Candidates(configured string) []Candidate { return libdir.Candidates(configured) }

// Resolve returns the first candidate directory that holds the libraries.
func Resolve(configured string) (string, error) { return libdir.Resolve(configured) }

// Missing lists the required files, and a CPU backend, that dir lacks.
func Missing(dir string) []string { return libdir.Missing(dir) }
