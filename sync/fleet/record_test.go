package fleet

import (
	"path/filepath"
	"testing"

	"github.com/ember-edge/ember/daemon/store"
)

// TestServingAndStaged: what the daemon runs, read from the one update
// record in every phase that names it.
func TestServingAndStaged(t *testing.T) {
	rel := func(v int64) Release { return Release{Version: v} }
	cur, tgt, kept := rel(1), &Target{Release: rel(2)}, rel(0)
	for _, c := range []struct {
		name                     string
		s                        State
		serving, staged, leaving int64 // -1: none
	}{
		{"idle", State{Phase: PhaseIdle}, 0, -1, -1},
		{"downloading", State{Phase: PhaseDownloading, Current: cur, Target: tgt}, 1, -1, -1},
		{"verifying", State{Phase: PhaseVerifying, Current: cur, Target: tgt}, 1, -1, -1},
		{"activating", State{Phase: PhaseActivating, Current: cur, Target: tgt}, 1, 2, -1},
		{"checking", State{Phase: PhaseChecking, Current: cur, Target: tgt}, 1, 2, -1},
		{"committing", State{Phase: PhaseCommitting, Current: cur, Target: tgt}, 1, 2, -1},
		{"active", State{Phase: PhaseActive, Current: rel(2)}, 2, -1, -1},
		{"automatic rollback", State{Phase: PhaseRollingBack, Current: cur, Target: tgt}, 1, -1, 2},
		{"manual rollback", State{Phase: PhaseRollingBack, Current: cur, Kept: []Release{kept}, RollbackTo: &kept}, 0, -1, -1},
		{"rolled back", State{Phase: PhaseRolledBack, Current: cur}, 1, -1, -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := func(r *Release) int64 {
				if r == nil {
					return -1
				}
				return r.Version
			}
			if got := c.s.Serving().Version; got != c.serving {
				t.Errorf("serving %d, want %d", got, c.serving)
			}
			if got := v(c.s.Staged()); got != c.staged {
				t.Errorf("staged %d, want %d", got, c.staged)
			}
			if got := v(c.s.Leaving()); got != c.leaving {
				t.Errorf("leaving %d, want %d", got, c.leaving)
			}
		})
	}
}

// TestAdopt: a store without an update record adopts a migrated active
// release; one with a record keeps it.
func TestAdopt(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "ember.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := SettingsStore(st, store.ErrNotFound)
	v3 := Release{Version: 3, Artifacts: []Installed{{Artifact: Artifact{Kind: KindModel, Name: "m",
		SHA256: sha256hex([]byte("x")), Size: 1}, Path: "/state/fleet/artifacts/x.gguf"}}}
	if ok, err := Adopt(s, Release{}); err != nil || ok {
		t.Fatalf("adopt the baseline: %v, %v; want nothing written", ok, err)
	}
	if ok, err := Adopt(s, v3); err != nil || !ok {
		t.Fatalf("adopt version 3: %v, %v", ok, err)
	}
	got, err := ReadState(s)
	if err != nil {
		t.Fatal(err)
	}
	if got.Phase != PhaseActive || got.Current.Version != 3 || got.Highest != 3 {
		t.Fatalf("adopted %+v", got)
	}
	// An existing record is the truth.
	if ok, err := Adopt(s, Release{Version: 9, Artifacts: v3.Artifacts}); err != nil || ok {
		t.Fatalf("adopt over a record: %v, %v", ok, err)
	}
	if again, _ := ReadState(s); again.Current.Version != 3 {
		t.Fatalf("record replaced: %+v", again)
	}
	// A release whose files could be anywhere is refused.
	bad := SettingsStore(openOther(t), store.ErrNotFound)
	if _, err := Adopt(bad, Release{Version: 1, Artifacts: []Installed{{Artifact: Artifact{Name: "m"}}}}); err == nil {
		t.Fatal("adopted a release without sha256, size or path")
	}
}

func openOther(t *testing.T) *store.Store {
	st, err := store.Open(filepath.Join(t.TempDir(), "other.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
