package testkit

import (
	"path/filepath"
	"testing"

	"github.com/ember-edge/ember/daemon/store"
)

// OpenStore opens a store in the test's temp dir; when the test ends it
// checks the file's consistency (bbolt's own check) and closes it.
func OpenStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "ember.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Check(); err != nil {
			t.Errorf("store check: %v", err)
		}
		st.Close()
	})
	return st
}
