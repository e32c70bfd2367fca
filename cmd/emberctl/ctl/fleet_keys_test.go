package ctl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ember-edge/ember/sync/fleet"
)

func TestFleetSignScope(t *testing.T) {
	dir, _ := signedFixture(t)
	yaml, env := filepath.Join(dir, "release.yaml"), filepath.Join(dir, "scoped.json")
	out := mustRun(t, "fleet", "sign", "--fleet", "line3", "--device", "gw-07", "--device", "gw-08", "--min-version", "2",
		"--valid-for", "48h", "--key", filepath.Join(dir, "keys", "fleet.key"), "--manifest", yaml, "--out", env)
	if !strings.Contains(out, "for fleet line3 (2 devices)") {
		t.Errorf("sign said %q", out)
	}
	out = mustRun(t, "fleet", "verify", "--key", filepath.Join(dir, "keys", "fleet.pub"), env)
	if !strings.Contains(out, "fleet line3, devices gw-07, gw-08") || !strings.Contains(out, "min version 2") {
		t.Errorf("verify said %q", out)
	}
	// The YAML's fleet and --fleet must agree; one of them is needed.
	os.WriteFile(yaml, []byte("fleet: line4\n"+testManifest), 0o644)
	_, errOut, code := runCtl(t, "fleet", "sign", "--fleet", "line3", "--key", filepath.Join(dir, "keys", "fleet.key"), "--manifest", yaml, "--out", env)
	if code != 1 || !strings.Contains(errOut, `fleet: the manifest says "line4", the command line "line3"`) {
		t.Errorf("conflicting fleet: exit %d, %s", code, errOut)
	}
	os.WriteFile(yaml, []byte(testManifest), 0o644)
	_, errOut, code = runCtl(t, "fleet", "sign", "--key", filepath.Join(dir, "keys", "fleet.key"), "--manifest", yaml, "--out", env)
	if code != 1 || !strings.Contains(errOut, "fleet: missing") {
		t.Errorf("no fleet: exit %d, %s", code, errOut)
	}
	// A manifest for line3 is not published to another fleet.
	_, errOut, code = runCtl(t, "fleet", "publish", "--url", "tcp://127.0.0.1:1", "--fleet", "line4", filepath.Join(dir, "release.json"))
	if code != 1 || !strings.Contains(errOut, `signed for fleet "line3"`) {
		t.Errorf("publish to another fleet: exit %d, %s", code, errOut)
	}
}

func TestFleetKeysSignVerify(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, "fleet", "keygen", "--out", filepath.Join(dir, "root"))
	mustRun(t, "fleet", "keygen", "--out", filepath.Join(dir, "a"))
	mustRun(t, "fleet", "keygen", "--out", filepath.Join(dir, "b"))
	out := filepath.Join(dir, "keys.json")
	said := mustRun(t, "fleet", "keys", "sign", "--root-key", filepath.Join(dir, "root", "fleet.key"), "--fleet", "line3",
		"--version", "2", "--keys", filepath.Join(dir, "a", "fleet.pub"), "--keys", filepath.Join(dir, "b", "fleet.pub"), "--out", out)
	if !strings.Contains(said, "key list version 2") {
		t.Errorf("keys sign said %q", said)
	}
	said = mustRun(t, "fleet", "keys", "verify", "--root-key", filepath.Join(dir, "root", "fleet.pub"), "--fleet", "line3", out)
	if !strings.Contains(said, "version 2") {
		t.Errorf("keys verify said %q", said)
	}
	data, _ := os.ReadFile(out)
	pemRoot, _ := os.ReadFile(filepath.Join(dir, "root", "fleet.pub"))
	root, _ := fleet.ParsePublicKey(pemRoot)
	if v, err := fleet.VerifyKeyList(data, root, "line3"); err != nil || v.Ring().Len() != 2 {
		t.Fatalf("device-side verification: %v", err)
	}
	// Another root does not verify it; the root may not list itself.
	_, errOut, code := runCtl(t, "fleet", "keys", "verify", "--root-key", filepath.Join(dir, "a", "fleet.pub"), "--fleet", "line3", out)
	if code != 1 || !strings.Contains(errOut, "no trusted key") {
		t.Errorf("verify with another root: exit %d, %s", code, errOut)
	}
	_, errOut, code = runCtl(t, "fleet", "keys", "sign", "--root-key", filepath.Join(dir, "root", "fleet.key"), "--fleet", "line3",
		"--version", "3", "--keys", filepath.Join(dir, "root", "fleet.pub"), "--out", out)
	if code != 1 || !strings.Contains(errOut, "root key") {
		t.Errorf("root in its own list: exit %d, %s", code, errOut)
	}
	// --device does not apply to a key list.
	_, errOut, code = runCtl(t, "fleet", "publish", "--url", "tcp://127.0.0.1:1", "--fleet", "line3", "--device", "gw-07", out)
	if code != 2 || !strings.Contains(errOut, "key list") {
		t.Errorf("publish a key list for a device: exit %d, %s", code, errOut)
	}
}
