package gguf

import (
	"errors"
	"fmt"
)

// ErrNotGGUF is returned when a file does not start with the GGUF magic:
// an empty download, an HTML error page, a Git LFS pointer, a file in the
// legacy GGML/GGMF/GGJT formats or in another format altogether.
var ErrNotGGUF = errors.New("not a GGUF file")

// ErrUnsupportedVersion is returned for GGUF versions other than 2 and 3,
// and for big-endian files, which llama.cpp cannot load on this host.
var ErrUnsupportedVersion = errors.New("unsupported GGUF version")

// ErrTruncated is returned when the file ends before the data its header
// describes: a partial download or copy. Re-fetching the file fixes it.
var ErrTruncated = errors.New("file truncated")

// ErrCorrupt is returned when the file's structure is invalid: an unknown
// value type, a nested array, a bad alignment, a malformed tensor shape,
// duplicate names, or tensor offsets that do not follow the layout
// llama.cpp expects.
var ErrCorrupt = errors.New("file corrupt")

// ErrUnsupportedTensorType is returned for a tensor whose ggml type this
// build does not know (a newer llama.cpp may), or one that was removed
// from the GGUF format, such as Q4_2 or the Q4_0_4_4 repacked types.
var ErrUnsupportedTensorType = errors.New("unsupported tensor type")

// ErrUnsupportedArchitecture is returned when general.architecture names a
// model architecture that llama.cpp does not implement.
var ErrUnsupportedArchitecture = errors.New("unsupported architecture")

// ErrInvalidMetadata is returned when the file is a well-formed GGUF but
// its model metadata is missing or inconsistent in a way llama.cpp would
// fail on or, worse, read out of bounds on: no general.architecture, a
// tokenizer whose scores or token types do not match its tokens, or a
// special token id past the end of the vocabulary.
var ErrInvalidMetadata = errors.New("invalid model metadata")

// failf formats an error that describes the problem with format and args
// and wraps sentinel, so callers can match it with errors.Is. Callers
// wrap it with where in the file it happened, and the exported functions
// prefix "gguf: ".
func failf(sentinel error, format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, sentinel)...)
}
