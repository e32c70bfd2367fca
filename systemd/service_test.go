package systemd_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ember-edge/ember/internal/testkit"
)

// checks are what testdata/verify.sh reports, in its order; each must pass.
var checks = []string{
	"ready", "status-text", "watchdog-configured", "runs-as-ember", "no-new-privs", "seccomp-filter",
	"no-capabilities", "protect-system", "private-devices", "noexec-writable", "resource-limits",
	"owner:/run/ember/ember.sock", "owner:/run/ember", "owner:/var/lib/ember", "owner:/var/lib/ember/import",
	"owner:/etc/ember/ember.yaml",
	"technician-generates", "outsider-refused", "status-json", "import-from-drop-dir", "ffi-probe", "reload",
	"watchdog-pings", "watchdog-restart", "watchdog-timeout-logged", "goroutine-dump", "serves-after-restart",
	"clean-stop", "stopping-notified", "runtime-dir-removed",
}

// TestServiceUnderSystemd runs the installed emberd.service, unchanged but
// for shorter timeouts, under a real systemd: testdata/boot.sh boots systemd
// as PID 1 in new namespaces over a throwaway overlay of this machine's root
// with the `make install` tree laid on top, and testdata/verify.sh, a unit
// ordered after emberd.service, checks the running service from inside:
// Type=notify readiness, the sandbox (every hardening directive in force
// while llama.cpp loads and generates), the socket's group access, the model
// import path, the watchdog restarting a hung emberd, and a clean stop.
func TestServiceUnderSystemd(t *testing.T) {
	needRoot(t, "it boots systemd in new namespaces")
	d := installed(t)
	for _, tool := range []string{"unshare", "nsenter", "runuser", "useradd", "systemd-sysusers", "/lib/systemd/systemd"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s: %v (Debian: util-linux, passwd, systemd)", tool, err)
		}
	}
	// An unprivileged container cannot make namespaces even as root.
	if out, err := exec.Command("unshare", "--mount", "--pid", "--fork", "--cgroup", "--net", "true").CombinedOutput(); err != nil {
		t.Skipf("cannot create namespaces here (%v: %s); run on a VM or a privileged container", err, strings.TrimSpace(string(out)))
	}
	cgroup := newCgroup(t)
	base := t.TempDir()
	upper, work, merged, out := filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "merged"), filepath.Join(base, "out")
	for _, dir := range []string{work, merged, out} {
		os.Mkdir(dir, 0o755)
	}
	// The upper layer: the install tree, plus the test's units, config and
	// model.
	if b, err := exec.Command("cp", "-a", d, upper).CombinedOutput(); err != nil {
		t.Fatalf("copy the install tree: %v\n%s", err, b)
	}
	// The staging directory was made 0700; as the root of the booted
	// system it must be the usual 0755 or no unprivileged user gets in.
	if err := os.Chmod(upper, 0o755); err != nil {
		t.Fatal(err)
	}
	testdata := filepath.Join(testkit.RepoRoot(), "systemd", "testdata")
	probe := filepath.Join(upper, "usr/local/libexec/ember-test/ffiprobe")
	build := exec.Command("go", "build", "-o", probe, "./testdata/ffiprobe")
	build.Dir = filepath.Join(testkit.RepoRoot(), "systemd")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build ffiprobe: %v\n%s", err, b)
	}
	model, err := os.ReadFile(testkit.TinyModel(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(d, "etc/ember/ember.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg = append(cfg, []byte("engine: {threads: 1}\nshutdown_timeout: 2s\nmodels:\n  - {name: tiny, path: /usr/local/share/ember-test/tiny.gguf}\n"+
		// The technician imports models too: an operator's permission.
		"auth: {roles: {technician: [\"group:ember\"], operator: [\"user:tech\"]}}\n")...)
	verify, _ := os.ReadFile(filepath.Join(testdata, "verify.sh"))
	files := map[string]struct {
		data []byte
		mode os.FileMode
	}{
		"etc/ember/ember.yaml":                          {cfg, 0o644},
		"usr/local/share/ember-test/tiny.gguf":          {model, 0o644},
		"usr/local/libexec/ember-test/verify.sh":        {verify, 0o755},
		"etc/systemd/system/ember-test.target":          {[]byte(testTarget), 0o644},
		"etc/systemd/system/ember-verify.service":       {[]byte(verifyService), 0o644},
		"etc/systemd/system/ember-ffiprobe.service":     {probeUnit(t, d), 0o644},
		"etc/systemd/system/emberd.service.d/test.conf": {[]byte(testTimings), 0o644},
		"var/log/journal/.keep":                         {nil, 0o644},
	}
	for name, f := range files {
		path := filepath.Join(upper, name)
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, f.data, f.mode); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	boot := exec.CommandContext(ctx, filepath.Join(testdata, "boot.sh"), upper, work, merged, out, cgroup)
	bootOut, bootErr := boot.CombinedOutput()
	results, _ := os.ReadFile(filepath.Join(out, "results"))
	journal, _ := os.ReadFile(filepath.Join(out, "journal.txt"))
	probeOut, _ := os.ReadFile(filepath.Join(out, "ffiprobe.txt"))
	t.Logf("ffiprobe in emberd's sandbox:\n%s", probeOut)
	limits, _ := os.ReadFile(filepath.Join(out, "limits.txt"))
	t.Logf("emberd's limits: %s", limits)
	dump := func() {
		t.Logf("boot.sh: %v\n%s", bootErr, bootOut)
		t.Logf("journal (last 150 lines):\n%s", tail(string(journal), 150))
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		dump()
		t.Fatalf("the booted system did not power off within 3 minutes; results so far:\n%s", results)
	}

	got := map[string]string{}
	var order []string
	sc := bufio.NewScanner(strings.NewReader(string(results)))
	for sc.Scan() {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "ok "); ok {
			got[name] = ""
			order = append(order, name)
		} else if rest, ok := strings.CutPrefix(line, "FAIL "); ok {
			name, why, _ := strings.Cut(rest, ": ")
			got[name] = why
			order = append(order, name)
		}
	}
	failed := false
	for _, c := range checks {
		why, ok := got[c]
		switch {
		case !ok:
			failed = true
			t.Errorf("%s: not checked (verify.sh stopped early?)", c)
		case why != "":
			failed = true
			t.Errorf("%s: %s", c, why)
		}
	}
	for _, c := range order {
		if !slices.Contains(checks, c) {
			t.Errorf("verify.sh reported %q, which the test does not know", c)
		}
	}
	if !strings.Contains(string(results), "done") {
		failed = true
		t.Error("verify.sh did not finish")
	}
	if failed {
		dump()
	}
}

const testTarget = `[Unit]
Description=ember service test
Wants=emberd.service ember-verify.service
`

const verifyService = `[Unit]
Description=ember service test: checks emberd.service from outside
After=emberd.service

[Service]
Type=oneshot
ExecStart=/usr/local/libexec/ember-test/verify.sh
StandardOutput=journal
`

// testTimings shortens the unit's timeouts so the watchdog test takes
// seconds, and bounds a start that never reports READY=1. It also makes a
// system call the filter blocks kill emberd, where the shipped unit returns
// EPERM: a call the sandbox forbids must fail the test, not pass unseen.
const testTimings = `[Service]
WatchdogSec=3s
RestartSec=1s
TimeoutStartSec=60s
SystemCallErrorNumber=kill
`

// probeUnit is emberd.service with ffiprobe in emberd's place: the same
// sandbox, minus what would clash with the running emberd (its
// directories, which systemd removes when a unit stops) and the service
// lifecycle settings.
func probeUnit(t *testing.T, destdir string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(destdir, "usr/local/lib/systemd/system/emberd.service"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		key, _, _ := strings.Cut(line, "=")
		switch key {
		case "Type":
			line = "Type=oneshot"
		case "ExecStart":
			line = "ExecStart=/usr/local/libexec/ember-test/ffiprobe"
		case "Description":
			line = "Description=ffiprobe in emberd's sandbox"
		case "NotifyAccess", "ExecReload", "WatchdogSec", "Restart", "RestartSec", "StateDirectory", "StateDirectoryMode",
			"RuntimeDirectory", "RuntimeDirectoryMode", "WantedBy":
			continue
		}
		out = append(out, line)
	}
	return []byte(strings.Join(out, "\n"))
}

// newCgroup makes an empty cgroup v2 directory below this process's own,
// for the booted systemd to manage as its whole tree, and removes it (with
// whatever that systemd left in it) when the test ends.
func newCgroup(t *testing.T) string {
	t.Helper()
	mount := ""
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mi), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if f := strings.Fields(pre); ok && len(f) >= 5 && strings.HasPrefix(post, "cgroup2 ") {
			mount = f[4]
			break
		}
	}
	if mount == "" {
		t.Fatal("no cgroup v2 hierarchy is mounted (mount -t cgroup2 none /sys/fs/cgroup/unified)")
	}
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	rel := ""
	for _, line := range strings.Split(string(self), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			rel = p
		}
	}
	dir := filepath.Join(mount, rel, fmt.Sprintf("ember-systemd-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("create a cgroup for the booted systemd: %v", err)
	}
	t.Cleanup(func() {
		// Deepest first; a cgroup whose last process just exited may
		// refuse removal for a moment.
		for range 50 {
			var dirs []string
			filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
				if err == nil && e.IsDir() {
					dirs = append(dirs, p)
				}
				return nil
			})
			slices.Reverse(dirs)
			for _, p := range dirs {
				os.Remove(p)
			}
			if _, err := os.Stat(dir); os.IsNotExist(err) {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("could not remove cgroup %s", dir)
	})
	return dir
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
