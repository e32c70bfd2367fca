// Package llamatest loads the llama.cpp libraries into a test process.
// It is apart from testkit so that tests which do no inference do not
// link the binding (and need no libffi to run).
package llamatest

import (
	"testing"

	"github.com/ember-edge/ember/daemon/llamacpp"
	"github.com/ember-edge/ember/internal/testkit"
)

// Load loads the llama.cpp libraries into the test process.
func Load(t testing.TB) {
	t.Helper()
	if err := llamacpp.Load(testkit.LibDir(t), llamacpp.Options{}); err != nil {
		t.Fatal(err)
	}
}
