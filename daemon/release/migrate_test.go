package release

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/internal/testkit"
	"github.com/ember-edge/ember/sync/fleet"
)

func openStore(t *testing.T) *store.Store { return testkit.OpenStore(t) }

// bundleRelease returns release v with one pipelines artifact, written to
// disk, defining one pipeline named name.
func bundleRelease(t *testing.T, v int64, name string) fleet.Release {
	t.Helper()
	content := []byte("pipelines:\n  - name: " + name + "\n    match: plant/+/alarm\n    prompt: \"Alarm {{.code}}\"\n    max_tokens: 4\n")
	sum := sha256.Sum256(content)
	path := filepath.Join(t.TempDir(), hex.EncodeToString(sum[:])+".pipelines")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return fleet.Release{Version: v, Artifacts: []fleet.Installed{{
		Artifact: fleet.Artifact{Kind: fleet.KindPipelines, Name: name, URL: "https://example.com/" + name,
			SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content))},
		Path: path,
	}}}
}

func putJSON(t *testing.T, st *store.Store, key string, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetSetting(key, data); err != nil {
		t.Fatal(err)
	}
	return data
}

func pipelineNames(t *testing.T, a *Applier) []string {
	t.Helper()
	ps, err := a.Pipelines()
	if err != nil {
		t.Fatalf("Pipelines: %v", err)
	}
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

// TestMigrateOldLayout opens stores holding the old layout — the fleet
// update record and daemon/release's own "release/state" — and checks
// that one record is left, saying what the two said together.
func TestMigrateOldLayout(t *testing.T) {
	v1 := bundleRelease(t, 1, "v1-alarms")
	v2 := bundleRelease(t, 2, "v2-alarms")
	const stateKey = "fleet/state"
	for _, c := range []struct {
		name string
		// fleet is the update record (nil: none); legacy the old record.
		fleet  *fleet.State
		legacy legacyState
		// want is the update record after the migration: its phase and
		// what it serves and stages.
		wantPhase   fleet.Phase
		wantServing int64
		wantStaged  int64 // -1: none
		wantPipes   []string
	}{
		{
			name:   "committed release in both",
			fleet:  &fleet.State{Format: 1, Phase: fleet.PhaseActive, Highest: 1, Current: v1, Kept: []fleet.Release{{}}, Transitions: 7},
			legacy: legacyState{Active: v1}, wantPhase: fleet.PhaseActive, wantServing: 1, wantStaged: -1,
			wantPipes: []string{"v1-alarms"},
		},
		{
			name: "mid-update: staged and being checked",
			fleet: &fleet.State{Format: 1, Phase: fleet.PhaseChecking, Highest: 2, Current: v1,
				Target: &fleet.Target{Release: v2, Digest: "d2"}, Transitions: 12},
			legacy: legacyState{Active: v1, Staged: &v2}, wantPhase: fleet.PhaseChecking, wantServing: 1, wantStaged: 2,
			wantPipes: []string{"v1-alarms"},
		},
		{
			// The legacy record was written by Commit before the
			// updater recorded the commit: the updater redoes it.
			name: "crash inside Commit",
			fleet: &fleet.State{Format: 1, Phase: fleet.PhaseCommitting, Highest: 2, Current: v1,
				Target: &fleet.Target{Release: v2, Digest: "d2"}, Transitions: 13},
			legacy: legacyState{Active: v2}, wantPhase: fleet.PhaseCommitting, wantServing: 1, wantStaged: 2,
			wantPipes: []string{"v1-alarms"},
		},
		{
			name:   "no update record: the old record's release is adopted",
			legacy: legacyState{Active: v1}, wantPhase: fleet.PhaseActive, wantServing: 1, wantStaged: -1,
			wantPipes: []string{"v1-alarms"},
		},
		{
			name:   "baseline only",
			legacy: legacyState{}, wantPhase: fleet.PhaseIdle, wantServing: 0, wantStaged: -1,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := openStore(t)
			var before []byte
			if c.fleet != nil {
				before = putJSON(t, st, stateKey, c.fleet)
			}
			putJSON(t, st, legacyStateKey, c.legacy)

			a := New(Options{Store: st})
			if got := pipelineNames(t, a); !slices.Equal(got, c.wantPipes) {
				t.Errorf("pipelines %q, want %q", got, c.wantPipes)
			}
			if _, err := st.Setting(legacyStateKey); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("the old record is still there (%v): two records to agree", err)
			}
			if c.fleet != nil {
				if after, _ := st.Setting(stateKey); !bytes.Equal(after, before) {
					t.Fatalf("the update record changed:\n%s\nwas\n%s", after, before)
				}
			}
			s, err := fleet.ReadState(fleet.SettingsStore(st, store.ErrNotFound))
			if err != nil {
				t.Fatal(err)
			}
			staged := int64(-1)
			if r := s.Staged(); r != nil {
				staged = r.Version
			}
			if s.Phase != c.wantPhase || s.Serving().Version != c.wantServing || staged != c.wantStaged {
				t.Fatalf("record: phase %s serving %d staged %d; want %s %d %d",
					s.Phase, s.Serving().Version, staged, c.wantPhase, c.wantServing, c.wantStaged)
			}
			if s.Highest < s.Current.Version {
				t.Fatalf("highest %d below current %d: rollback protection lost", s.Highest, s.Current.Version)
			}
			// Opening again finds nothing to migrate and the same answer.
			if got := pipelineNames(t, New(Options{Store: st})); !slices.Equal(got, c.wantPipes) {
				t.Errorf("after a second open: pipelines %q, want %q", got, c.wantPipes)
			}
		})
	}
}

// TestMigrateRefusesADamagedRecord: an old record that cannot be read
// fails the applier (the daemon must not guess what it serves) and is
// kept for a person to look at.
func TestMigrateRefusesADamagedRecord(t *testing.T) {
	st := openStore(t)
	if err := st.SetSetting(legacyStateKey, []byte(`{"active":{"version":"one"}}`)); err != nil {
		t.Fatal(err)
	}
	a := New(Options{Store: st})
	if _, err := a.Pipelines(); err == nil {
		t.Fatal("Pipelines after a failed migration: no error")
	}
	if _, err := st.Setting(legacyStateKey); err != nil {
		t.Fatalf("the damaged record is gone: %v", err)
	}
}
