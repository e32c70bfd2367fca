package systemd_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ember-edge/ember/daemon/config"
)

// verifyUnit runs `systemd-analyze verify` on the installed emberd.service
// and the drop-ins given (name -> content), with ExecStart pointing at the
// staged binary (verify checks that it exists and is executable), and
// returns what it printed. A unit it has nothing to say about prints
// nothing: an unknown directive or a bad value is only a warning, with exit
// status 0, so any output is a finding.
func verifyUnit(t *testing.T, unitText string, dropins map[string]string) (string, error) {
	t.Helper()
	d := installed(t)
	dir := t.TempDir()
	unitText = strings.ReplaceAll(unitText, "/usr/local/bin/emberd", filepath.Join(d, "usr/local/bin/emberd"))
	if err := os.WriteFile(filepath.Join(dir, "emberd.service"), []byte(unitText), 0o644); err != nil {
		t.Fatal(err)
	}
	if len(dropins) > 0 {
		os.Mkdir(filepath.Join(dir, "emberd.service.d"), 0o755)
		for name, text := range dropins {
			os.WriteFile(filepath.Join(dir, "emberd.service.d", name), []byte(text), 0o644)
		}
	}
	out, err := exec.Command("systemd-analyze", "verify", "--man=no", filepath.Join(dir, "emberd.service")).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func installedUnit(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(installed(t), "usr/local/lib/systemd/system/emberd.service"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestUnitVerifies(t *testing.T) {
	unitText := installedUnit(t)
	jetson, err := os.ReadFile(sourcePath("jetson-gpu.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := verifyUnit(t, unitText, nil); err != nil || out != "" {
		t.Fatalf("systemd-analyze verify emberd.service: %v\n%s", err, out)
	}
	if out, err := verifyUnit(t, unitText, map[string]string{"jetson-gpu.conf": string(jetson)}); err != nil || out != "" {
		t.Fatalf("systemd-analyze verify with jetson-gpu.conf: %v\n%s", err, out)
	}

	// The check must catch what it is for: each broken copy is reported.
	for _, c := range []struct {
		name, old, new string
		dropin         bool
		want           string
	}{
		{"misspelled directive", "ProtectHome=yes", "ProtectHom=yes", false, "Unknown key"},
		{"bad value", "ProtectSystem=strict", "ProtectSystem=very", false, "Failed to parse protect system value"},
		{"bad duration", "WatchdogSec=30s", "WatchdogSec=30 parsecs", false, "Failed to parse sec value"},
		{"unknown address family", "AF_INET6", "AF_INET7", false, "AF_INET7"},
		{"misspelled in the drop-in", "SupplementaryGroups=", "SuplementaryGroups=", true, "Unknown key"},
		{"memory above 100%", "MemoryMax=90%", "MemoryMax=190%", false, "Invalid memory limit"},
		{"bad tasks limit", "TasksMax=1024", "TasksMax=lots", false, "Invalid maximum tasks value"},
		{"relative noexec path", "NoExecPaths=/var/lib/ember", "NoExecPaths=var/lib/ember", false, "not absolute"},
	} {
		t.Run(c.name, func(t *testing.T) {
			text, dropins := unitText, map[string]string{"jetson-gpu.conf": string(jetson)}
			if c.dropin {
				dropins["jetson-gpu.conf"] = strings.Replace(string(jetson), c.old, c.new, 1)
			} else {
				text = strings.Replace(text, c.old, c.new, 1)
			}
			out, _ := verifyUnit(t, text, dropins)
			if !strings.Contains(out, c.want) {
				t.Fatalf("systemd-analyze verify did not report %q:\n%s", c.want, out)
			}
		})
	}
}

// TestUnitExposure keeps the sandbox from eroding unnoticed: systemd's own
// scoring of the unit (0 is fully locked down, 10 is unprotected) must stay
// where the hardened unit puts it.
func TestUnitExposure(t *testing.T) {
	d := installed(t)
	dir := t.TempDir()
	text := strings.ReplaceAll(installedUnit(t), "/usr/local/bin/emberd", filepath.Join(d, "usr/local/bin/emberd"))
	path := filepath.Join(dir, "emberd.service")
	os.WriteFile(path, []byte(text), 0o644)
	out := mustRun(t, "systemd-analyze", "security", "--offline=true", "--no-pager", path)
	m := regexp.MustCompile(`Overall exposure level for emberd\.service: ([0-9.]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	const limit = 2.0
	if score, _ := strconv.ParseFloat(m[1], 64); score > limit {
		t.Fatalf("exposure %s, above %.1f: a hardening directive was lost\n%s", m[1], limit, out)
	}
	t.Logf("exposure %s", m[1])
}

// TestUnitAgreesWithConfig checks that the unit, the default config and the
// sysusers entry describe the same daemon, with the real config loader.
func TestUnitAgreesWithConfig(t *testing.T) {
	u := parseUnit(t, sourcePath("emberd.service"))
	cfg, err := config.Load(sourcePath("ember.yaml"))
	if err != nil {
		t.Fatalf("ember.yaml: %v", err)
	}
	want := map[string]string{
		"Type": "notify", "NotifyAccess": "main", "Restart": "on-failure", "User": "ember", "Group": "ember",
		"StateDirectory": "ember", "RuntimeDirectory": "ember",
		"ProtectSystem": "strict", "NoNewPrivileges": "yes", "MemoryDenyWriteExecute": "yes",
		"CapabilityBoundingSet": "", "SystemCallArchitectures": "native",
	}
	for k, v := range want {
		if got := u.get("Service", k); len(got) == 0 || u.one("Service", k) != v {
			t.Errorf("[Service] %s=%q, want %q", k, got, v)
		}
	}
	if wd, err := time.ParseDuration(u.one("Service", "WatchdogSec")); err != nil || wd < 10*time.Second {
		t.Errorf("WatchdogSec=%s: want a duration of at least 10s (pings every half of it)", u.one("Service", "WatchdogSec"))
	}
	if u.one("Unit", "StartLimitBurst") == "" || u.one("Unit", "StartLimitIntervalSec") == "" {
		t.Error("no start limit: a broken config would restart forever")
	}
	if got := u.one("Service", "ExecStart"); !strings.HasSuffix(got, " --config "+config.DefaultPath) {
		t.Errorf("ExecStart=%s does not name %s", got, config.DefaultPath)
	}
	if got := u.get("Service", "ConfigurationDirectory"); got != nil {
		t.Errorf("ConfigurationDirectory=%s would make the config directory writable in the sandbox", got)
	}
	// The daemon is not root: the socket must be set, and in the runtime
	// directory systemd makes for it.
	if filepath.Dir(cfg.GRPC.Socket) != "/run/"+u.one("Service", "RuntimeDirectory") {
		t.Errorf("grpc.socket %q is not in RuntimeDirectory=%s", cfg.GRPC.Socket, u.one("Service", "RuntimeDirectory"))
	}
	if cfg.StateDir != "/var/lib/"+u.one("Service", "StateDirectory") {
		t.Errorf("state_dir %q is not StateDirectory=%s", cfg.StateDir, u.one("Service", "StateDirectory"))
	}
	if cfg.GRPC.SocketMode != "0660" {
		t.Errorf("grpc.socket_mode %q: the ember group must be able to use the socket", cfg.GRPC.SocketMode)
	}
	sysusers, _ := os.ReadFile(sourcePath("ember.sysusers"))
	if !regexp.MustCompile(`(?m)^u ember - "[^"]+" /var/lib/ember`).Match(sysusers) {
		t.Errorf("ember.sysusers does not create the ember user:\n%s", sysusers)
	}
}

// TestUnitResources checks the resource limits and the noexec mounts
// against what emberd needs: memory as a share of RAM that leaves the OS
// some, thread and descriptor limits that bound a leak without starving a
// big gateway, every writable path noexec but the llama.cpp libraries not
// among them, and IP filtering left to the site (documented, commented).
func TestUnitResources(t *testing.T) {
	u := parseUnit(t, sourcePath("emberd.service"))
	cfg, err := config.Load(sourcePath("ember.yaml"))
	if err != nil {
		t.Fatalf("ember.yaml: %v", err)
	}
	percent := func(key string) int {
		v := u.one("Service", key)
		n, err := strconv.Atoi(strings.TrimSuffix(v, "%"))
		if !strings.HasSuffix(v, "%") || err != nil {
			t.Fatalf("%s=%q: want a percentage of RAM, so one unit fits a 4 GiB Pi and a 64 GiB gateway", key, v)
		}
		return n
	}
	high, max := percent("MemoryHigh"), percent("MemoryMax")
	if high >= max || max > 95 || high < 50 {
		t.Errorf("MemoryHigh=%d%% MemoryMax=%d%%: want 50 <= high < max <= 95, leaving the OS the rest", high, max)
	}
	if n, err := strconv.Atoi(u.one("Service", "TasksMax")); err != nil || n < 256 {
		t.Errorf("TasksMax=%s: want a number of at least 256 (Go aborts when it cannot start a thread)", u.one("Service", "TasksMax"))
	}
	if n, err := strconv.Atoi(u.one("Service", "LimitNOFILE")); err != nil || n < 4096 {
		t.Errorf("LimitNOFILE=%s: want a number of at least 4096 (one per MQTT or gRPC connection)", u.one("Service", "LimitNOFILE"))
	}

	var noexec []string
	for _, v := range u.get("Service", "NoExecPaths") {
		for _, p := range strings.Fields(v) {
			noexec = append(noexec, strings.TrimPrefix(p, "-"))
		}
	}
	for _, want := range []string{cfg.StateDir, filepath.Dir(cfg.GRPC.Socket), "/tmp", "/var/tmp"} {
		if !slices.Contains(noexec, want) {
			t.Errorf("NoExecPaths=%v lacks %s, where the sandbox can write", noexec, want)
		}
	}
	for _, p := range noexec {
		if p == "/" || strings.HasPrefix(cfg.Llama.LibDir+"/", p+"/") || strings.HasPrefix("/usr/local/bin/", p+"/") {
			t.Errorf("NoExecPaths=%s covers the binary or llama.lib_dir %s", p, cfg.Llama.LibDir)
		}
	}
	// systemd 252 re-mounts an ExecPaths= path writable (systemd/README.md).
	if got := u.get("Service", "ExecPaths"); got != nil {
		t.Errorf("ExecPaths=%v: on systemd 252 it undoes ProtectSystem=strict for that path", got)
	}

	// IP filtering is guidance: commented out, with the form to use.
	if got := u.get("Service", "IPAddressDeny"); got != nil {
		t.Errorf("IPAddressDeny=%v: the broker and gRPC may serve the plant network; leave it to a drop-in", got)
	}
	text, _ := os.ReadFile(sourcePath("emberd.service"))
	for _, want := range []string{"#IPAddressDeny=any\n", "#IPAddressAllow=localhost "} {
		if !strings.Contains(string(text), want) {
			t.Errorf("emberd.service lacks the commented example %q", strings.TrimSpace(want))
		}
	}
}
