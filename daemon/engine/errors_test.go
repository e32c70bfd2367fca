package engine

import (
	"errors"
	"strings"
	"testing"

	"github.com/ember-edge/ember/daemon/inference"
)

// yzma reports some llama.cpp failures with a zero handle and a nil
// error: the message must still say what failed, never "<nil>".
func TestLlamaFailuresNameWhatFailed(t *testing.T) {
	cases := []struct {
		name      string
		err       error
		want      string
		transient bool
	}{
		{"load, no error from the binding", llamaError("llama.cpp could not load m.gguf", nil), "llama.cpp could not load m.gguf", false},
		{"load, with the binding's error", llamaError("create llama.cpp context", errors.New("out of memory")), "create llama.cpp context: out of memory", false},
		{"decode, KV cache full", decodeError(1, nil), "llama.cpp decode failed: no room left in the KV cache", true},
		{"decode, other status", decodeError(-3, nil), "llama.cpp decode failed: llama_decode returned -3", true},
		{"decode, with the binding's error", decodeError(-1, errors.New("ffi call failed")), "llama.cpp decode failed: llama_decode returned -1: ffi call failed", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg := c.err.Error()
			if strings.Contains(msg, "<nil>") || strings.Contains(msg, "%!") {
				t.Fatalf("message %q hides what failed", msg)
			}
			if msg != c.want {
				t.Errorf("message = %q, want %q", msg, c.want)
			}
			if got := inference.IsTransient(c.err); got != c.transient {
				t.Errorf("transient = %v, want %v", got, c.transient)
			}
		})
	}
}
