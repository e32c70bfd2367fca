package systemd_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/daemon/llamacpp"
)

func TestInstallTree(t *testing.T) {
	d := installed(t)
	for _, f := range []struct {
		path string
		mode fs.FileMode
	}{
		{"usr/local/bin/emberd", 0o755},
		{"usr/local/bin/emberctl", 0o755},
		{"usr/local/lib/systemd/system/emberd.service", 0o644},
		{"usr/local/lib/sysusers.d/ember.conf", 0o644},
		{"usr/local/lib/tmpfiles.d/ember.conf", 0o644},
		{"etc/ember/ember.yaml", 0o640},
		{"usr/local/lib/ember/llama/libggml-base.so", 0o644},
		{"usr/local/share/doc/ember/jetson-gpu.conf", 0o644},
		{"usr/local/share/doc/ember/systemd.md", 0o644},
		{"usr/local/share/doc/ember/ember.yaml", 0o644},
		{"usr/local/share/doc/ember/firmware-notes/cross-cutting.md", 0o644},
	} {
		fi, err := os.Stat(filepath.Join(d, f.path))
		if err != nil {
			t.Errorf("%s: %v", f.path, err)
			continue
		}
		if fi.Mode().Perm() != f.mode || !fi.Mode().IsRegular() {
			t.Errorf("%s: mode %v, want %v", f.path, fi.Mode(), f.mode)
		}
	}
	// The config may hold broker passwords: no other user reads it. Its
	// group is set by the tmpfiles.d entry once the ember group exists
	// (TestSysusersAndTmpfiles); staged, it belongs to whoever installed.
	if fi, err := os.Stat(filepath.Join(d, "etc/ember/ember.yaml")); err == nil {
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != os.Geteuid() {
			t.Errorf("etc/ember/ember.yaml: owner %d, want %d", st.Uid, os.Geteuid())
		}
	}
	tmpfiles, _ := os.ReadFile(filepath.Join(d, "usr/local/lib/tmpfiles.d/ember.conf"))
	if !regexp.MustCompile(`(?m)^z /etc/ember/ember\.yaml 0640 root ember -$`).Match(tmpfiles) {
		t.Errorf("the installed tmpfiles.d entry does not set the config's mode and group:\n%s", tmpfiles)
	}
	// yzma opens libllama.so and libggml.so by name: the links survive.
	lib := filepath.Join(d, "usr/local/lib/ember/llama")
	if missing := llamacpp.Missing(lib); len(missing) > 0 {
		t.Errorf("installed libraries lack %v", missing)
	}
	if target, err := os.Readlink(filepath.Join(lib, "libllama.so")); err != nil || strings.Contains(target, "/") {
		t.Errorf("libllama.so should be a relative link to the versioned file: %q %v", target, err)
	}

	// Installed files hold the final paths, never the staging directory.
	filepath.WalkDir(d, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || strings.HasSuffix(path, ".so") || filepath.Base(filepath.Dir(path)) == "bin" {
			return err
		}
		if data, _ := os.ReadFile(path); strings.Contains(string(data), d) {
			t.Errorf("%s mentions the staging directory %s", path, d)
		}
		return nil
	})
	u := parseUnit(t, filepath.Join(d, "usr/local/lib/systemd/system/emberd.service"))
	if got := u.one("Service", "ExecStart"); got != "/usr/local/bin/emberd --config /etc/ember/ember.yaml" {
		t.Errorf("ExecStart=%s", got)
	}
	cfg, err := config.Load(filepath.Join(d, "etc/ember/ember.yaml"))
	if err != nil {
		t.Fatalf("installed config: %v", err)
	}
	if cfg.Llama.LibDir != "/usr/local/lib/ember/llama" {
		t.Errorf("installed config's llama.lib_dir = %q", cfg.Llama.LibDir)
	}

	// The installed emberd finds the installed libraries beside it
	// (../lib/ember/llama), with neither config nor environment naming them.
	dir := t.TempDir()
	bare := filepath.Join(dir, "bare.yaml")
	if err := os.WriteFile(bare, []byte("version: 1\nstate_dir: "+dir+"/state\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(d, "usr/local/bin/emberd"), "hw", "-o", "json", "--config", bare)
	cmd.Env = append(os.Environ(), llamacpp.EnvLibDir+"=")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("installed emberd hw: %v\n%s", err, out)
	}
	var p struct {
		CPU struct {
			GGMLVariants []string `json:"ggml_variants"`
		} `json:"cpu"`
	}
	if err := json.Unmarshal(out, &p); err != nil || len(p.CPU.GGMLVariants) == 0 {
		t.Errorf("installed emberd did not find the installed libraries: %v\n%s", err, out)
	}
}

func TestInstallUnderAnotherPrefix(t *testing.T) {
	d, out, err := makeInstall("PREFIX=/usr")
	if err != nil {
		t.Fatalf("make install PREFIX=/usr: %v\n%s", err, out)
	}
	u := parseUnit(t, filepath.Join(d, "usr/lib/systemd/system/emberd.service"))
	if got := u.one("Service", "ExecStart"); got != "/usr/bin/emberd --config /etc/ember/ember.yaml" {
		t.Errorf("ExecStart=%s", got)
	}
	for _, f := range []string{"usr/bin/emberd", "usr/lib/ember/llama/libllama.so", "usr/lib/sysusers.d/ember.conf", "usr/lib/tmpfiles.d/ember.conf"} {
		if _, err := os.Stat(filepath.Join(d, f)); err != nil {
			t.Error(err)
		}
	}
	cfg, err := config.Load(filepath.Join(d, "etc/ember/ember.yaml"))
	if err != nil || cfg.Llama.LibDir != "/usr/lib/ember/llama" {
		t.Errorf("config under PREFIX=/usr: lib_dir %q, %v", cfg.Llama.LibDir, err)
	}
}

// An upgrade keeps what the operator changed: the config, and llama.cpp
// libraries that did not come from make install (a CUDA build).
func TestInstallKeepsLocalConfigAndGPULibraries(t *testing.T) {
	d := t.TempDir()
	cfgPath := filepath.Join(d, "etc/ember/ember.yaml")
	local := "version: 1\ndevice_id: press-07 # edited on site\n"
	gpuLib := filepath.Join(d, "usr/local/lib/ember/llama")
	for path, data := range map[string]string{
		cfgPath:                                  local,
		filepath.Join(gpuLib, "libllama.so"):     "cuda build",
		filepath.Join(gpuLib, "libggml-cuda.so"): "cuda backend",
	} {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	build := t.TempDir()
	out, err := runMake("DESTDIR="+d, "INSTALL_BUILD="+build)
	if err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(cfgPath); string(got) != local {
		t.Errorf("the local config was replaced:\n%s", got)
	}
	if got, _ := os.ReadFile(filepath.Join(gpuLib, "libllama.so")); string(got) != "cuda build" {
		t.Errorf("the CUDA libraries were replaced")
	}
	if fi, _ := os.Stat(cfgPath); fi == nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("the local config's mode was changed: %v", fi)
	}
	for _, want := range []string{"keeping the existing " + cfgPath, "keeping the llama.cpp libraries in " + gpuLib,
		"WARNING: " + cfgPath + " is readable by every user"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("make install did not say %q:\n%s", want, out)
		}
	}
	// Libraries make install put there itself are replaced on upgrade.
	os.RemoveAll(gpuLib)
	if out, err := runMake("DESTDIR="+d, "INSTALL_BUILD="+build); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(gpuLib, "stale.so"), nil, 0o644)
	if out, err := runMake("DESTDIR="+d, "INSTALL_BUILD="+build); err != nil {
		t.Fatalf("make install again: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(gpuLib, "stale.so")); !os.IsNotExist(err) {
		t.Errorf("an upgrade left a file of the previous library set: %v", err)
	}
	if missing := llamacpp.Missing(gpuLib); len(missing) > 0 {
		t.Errorf("after the upgrade the libraries lack %v", missing)
	}
}

// The sysusers.d and tmpfiles.d entries, applied by systemd's own tools to
// a scratch root, make the user, group and directories the unit expects.
func TestSysusersAndTmpfiles(t *testing.T) {
	needRoot(t, "systemd-tmpfiles chowns to the ember user")
	root := t.TempDir()
	for src, dst := range map[string]string{"ember.sysusers": "usr/lib/sysusers.d/ember.conf", "ember.tmpfiles": "usr/lib/tmpfiles.d/ember.conf"} {
		data, err := os.ReadFile(sourcePath(src))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(root, filepath.Dir(dst)), 0o755)
		os.WriteFile(filepath.Join(root, dst), data, 0o644)
	}
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	mustRun(t, "systemd-sysusers", "--root="+root)
	passwd, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
	group, _ := os.ReadFile(filepath.Join(root, "etc/group"))
	var uid, gid string
	for _, line := range strings.Split(string(passwd), "\n") {
		f := strings.Split(line, ":")
		if len(f) == 7 && f[0] == "ember" {
			uid, gid = f[2], f[3]
			if f[5] != "/var/lib/ember" || !strings.HasSuffix(f[6], "nologin") {
				t.Errorf("ember user: home %q, shell %q", f[5], f[6])
			}
		}
	}
	if uid == "" || !strings.Contains(string(group), "ember:x:"+gid+":") {
		t.Fatalf("no ember user and group:\n%s\n%s", passwd, group)
	}
	// A config an older install left world-readable is tightened.
	os.MkdirAll(filepath.Join(root, "etc/ember"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/ember/ember.yaml"), []byte("version: 1\n"), 0o644)
	mustRun(t, "systemd-tmpfiles", "--create", "--root="+root)
	for _, c := range []struct {
		path     string
		mode     fs.FileMode
		uid, gid string
	}{
		{"var/lib/ember", 0o750, uid, gid},
		{"var/lib/ember/import", 0o770 | fs.ModeSetgid, uid, gid},
		{"etc/ember/ember.yaml", 0o640, "0", gid},
	} {
		fi, err := os.Stat(filepath.Join(root, c.path))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode()&(fs.ModePerm|fs.ModeSetgid) != c.mode || strconv.Itoa(int(st.Uid)) != c.uid || strconv.Itoa(int(st.Gid)) != c.gid {
			t.Errorf("%s: %v %d:%d, want %v %s:%s", c.path, fi.Mode(), st.Uid, st.Gid, c.mode, c.uid, c.gid)
		}
	}
}
