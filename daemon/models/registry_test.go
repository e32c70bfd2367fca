package models

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/internal/testkit"
)

func openStore(t *testing.T) *store.Store { return testkit.OpenStore(t) }

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestListReportsTheActiveArtifact: after a fleet release replaced the
// file of a config model, the entry names the release's artifact (the
// file that runs), with the release's version and license, and keeps
// the config's settings; a store record of another source does not move
// a config entry off its file.
func TestListReportsTheActiveArtifact(t *testing.T) {
	st := openStore(t)
	cfgPath := writeFile(t, "tiny.gguf", "the config's file")
	artifact := writeFile(t, "artifact.gguf", "the release's artifact, longer")
	const artifactSum = "4b2f8f0a2ad6f3e6bb1d77c4cbf1ee2b0d2a3ad0d4b4a5bfb1a7b6e0c6d5e4f3"
	imported := writeFile(t, "imported.gguf", "an import")
	cfg := []config.Model{
		{Name: "tiny", Path: cfgPath, Default: true, Threads: 2, Context: 512},
		{Name: "other", Path: cfgPath},
	}
	for _, rec := range []store.ModelRecord{
		{Name: "tiny", Path: artifact, SHA256: artifactSum, Size: 30, License: "apache-2.0", Version: "3",
			Source: SourceFleet, AddedAt: time.Now().UTC()},
		{Name: "other", Path: imported, SHA256: "00", Size: 9, Source: "import:x", AddedAt: time.Now().UTC()},
	} {
		if err := st.PutModel(rec); err != nil {
			t.Fatal(err)
		}
	}
	reg := New(st, cfg, t.TempDir())

	for _, c := range []struct {
		name, path, sha string
		size            int64
		version         string
	}{
		{name: "tiny", path: artifact, sha: artifactSum, size: 30, version: "3"},
		{name: "other", path: cfgPath, sha: "", size: int64(len("the config's file"))},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, err := reg.Get(c.name)
			if err != nil {
				t.Fatal(err)
			}
			if e.Path != c.path || e.SHA256 != c.sha || e.Size != c.size || e.Version != c.version {
				t.Fatalf("entry %+v, want path %s, sha256 %q, size %d, version %q", e, c.path, c.sha, c.size, c.version)
			}
			if e.Source != SourceConfig {
				t.Fatalf("source %q: the config still owns the name", e.Source)
			}
		})
	}
	e, _ := reg.Get("tiny")
	if !e.Default || e.Threads != 2 || e.Context != 512 || !e.Load || e.License != "apache-2.0" {
		t.Fatalf("the config's settings or the release's license are lost: %+v", e)
	}
	if sum, err := reg.SHA256("tiny"); err != nil || sum != artifactSum {
		t.Fatalf("SHA256(tiny) = %q, %v; want the artifact's", sum, err)
	}
}
