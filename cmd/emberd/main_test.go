package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/daemon/synth"
	"github.com/ember-edge/ember/internal/testkit"
)

// These tests run the real binaries as separate processes, as an operator
// and a technician would.

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ember-bin-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	for _, cmd := range []string{"emberd", "emberctl"} {
		build := exec.Command("go", "build", "-o", filepath.Join(dir, cmd), "github.com/ember-edge/ember/cmd/"+cmd)
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", cmd, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemonProc is an emberd process under test.
type daemonProc struct {
	cmd    *exec.Cmd
	socket string
	dir    string
	stderr *bytes.Buffer
	exited chan error
}

func writeConfig(t *testing.T, dir, extra string) string {
	t.Helper()
	return writeConfigFor(t, dir, testkit.TinyModel(t), extra)
}

func writeConfigFor(t *testing.T, dir, model, extra string) string {
	t.Helper()
	cfg := fmt.Sprintf(`version: 1
device_id: press-07
state_dir: %s/state
shutdown_timeout: 2s
llama: {lib_dir: %s}
grpc: {socket: %s/ember.sock}
engine: {threads: 1, queue_size: 4}
mqtt: {embedded: {listen: ""}}
metrics: {listen: ""}
models:
  - {name: tiny, path: %s, default: true}
%s`, dir, testkit.LibDir(t), dir, model, extra)
	path := filepath.Join(dir, "ember.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func startDaemon(t *testing.T, cfgPath string) *daemonProc {
	t.Helper()
	dir := filepath.Dir(cfgPath)
	d := &daemonProc{socket: filepath.Join(dir, "ember.sock"), dir: dir, stderr: &bytes.Buffer{}, exited: make(chan error, 1)}
	d.cmd = exec.Command(filepath.Join(binDir, "emberd"), "--config", cfgPath)
	d.cmd.Stderr = d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.exited <- d.cmd.Wait() }()
	t.Cleanup(func() {
		d.cmd.Process.Kill()
		<-d.exited
		if t.Failed() {
			t.Logf("emberd log:\n%s", d.stderr)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if out, _, err := d.ctl(t, "status"); err == nil && strings.Contains(out, "press-07") {
			return d
		}
		select {
		case err := <-d.exited:
			t.Fatalf("emberd exited at start: %v\n%s", err, d.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("emberd did not come up:\n%s", d.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ctl runs emberctl against the daemon and returns stdout, stderr and the
// exit error.
func (d *daemonProc) ctl(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "emberctl"), args...)
	cmd.Env = append(os.Environ(), "EMBER_SOCKET="+d.socket)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func TestCheckConfigNamesEveryProblemWithItsLine(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("device_id: a\nstat_dir: /x\nengine:\n  queue_size: many\n"), 0o644)
	cmd := exec.Command(filepath.Join(binDir, "emberd"), "check-config", "--config", bad)
	out, err := cmd.CombinedOutput()
	if code := exitCode(err); code != 2 {
		t.Fatalf("exit %d, want 2\n%s", code, out)
	}
	for _, want := range []string{`line 2: unknown key "stat_dir"`, `line 4: engine.queue_size: want an integer, got "many"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	good := writeConfig(t, t.TempDir(), "")
	out, err = exec.Command(filepath.Join(binDir, "emberd"), "check-config", "--config", good).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "is valid") || !strings.Contains(string(out), "ember.sock") {
		t.Fatalf("valid config: %v\n%s", err, out)
	}

	// A config whose model file is not GGUF passes parsing but not the check.
	broken := filepath.Join(dir, "notes.gguf")
	os.WriteFile(broken, []byte("not a model"), 0o644)
	cfg := writeConfig(t, t.TempDir(), fmt.Sprintf("  - {name: broken, path: %s}\n", broken))
	out, err = exec.Command(filepath.Join(binDir, "emberd"), "check-config", "--config", cfg).CombinedOutput()
	if exitCode(err) != 2 || !strings.Contains(string(out), `"broken"`) || !strings.Contains(string(out), "not a GGUF") {
		t.Fatalf("broken model: %v\n%s", err, out)
	}
}

// A password that would cross the network unencrypted is a warning, not
// an error: check-config prints it and passes, emberd logs it and starts.
func TestPlainPasswordIsAWarning(t *testing.T) {
	const want = "uplink.url: the broker password is sent unencrypted to tcp://192.0.2.1:1883"
	cfg := writeConfig(t, t.TempDir(), "uplink: {url: \"tcp://192.0.2.1:1883\", fleet: plant, username: dev, password: s3cret}\n")
	check := exec.Command(filepath.Join(binDir, "emberd"), "check-config", "--config", cfg)
	var out, errb bytes.Buffer
	check.Stdout, check.Stderr = &out, &errb
	err := check.Run()
	stdout, stderr := out.String(), errb.String()
	if err != nil || !strings.Contains(stdout, "is valid") || !strings.Contains(stderr, "warning: line 12: "+want) {
		t.Fatalf("check-config: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	if strings.Contains(stdout+stderr, "s3cret") {
		t.Errorf("check-config printed the password:\n%s%s", stdout, stderr)
	}
	d := startDaemon(t, cfg)
	d.cmd.Process.Signal(syscall.SIGTERM) // the log is read once emberd is done writing it
	<-d.exited
	d.exited <- nil // for the cleanup
	if log := d.stderr.String(); !strings.Contains(log, "msg=config") || !strings.Contains(log, want) {
		t.Errorf("emberd did not log the warning at start:\n%s", log)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

func TestEmberctlAgainstARunningDaemon(t *testing.T) {
	d := startDaemon(t, writeConfig(t, t.TempDir(), ""))

	out, _, err := d.ctl(t, "generate", "--max-tokens", "8", "--seed", "3", "the pump on line three")
	if err != nil || strings.TrimSpace(out) == "" {
		t.Fatalf("generate: %v %q", err, out)
	}
	again, _, _ := d.ctl(t, "generate", "--max-tokens", "8", "--seed", "3", "the pump on line three")
	if again != out {
		t.Errorf("same seed, different output: %q vs %q", out, again)
	}

	out, _, err = d.ctl(t, "status", "-o", "json")
	var info struct {
		DeviceID     string `json:"device_id"`
		Version      string `json:"version"`
		LoadedModels []struct {
			Name string `json:"name"`
		} `json:"loaded_models"`
		Host struct {
			PhysicalCores int `json:"physical_cores"`
		} `json:"host"`
	}
	if err != nil || json.Unmarshal([]byte(out), &info) != nil {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	if info.DeviceID != "press-07" || len(info.LoadedModels) != 1 || info.LoadedModels[0].Name != "tiny" || info.Host.PhysicalCores < 1 {
		t.Fatalf("status %+v", info)
	}

	out, _, err = d.ctl(t, "models", "inspect", "tiny", "-o", "json")
	var md map[string]any
	if err != nil || json.Unmarshal([]byte(out), &md) != nil {
		t.Fatalf("models inspect -o json: %v\n%s", err, out)
	}
	if md["architecture"] != "llama" || md["chat_template"] == "" || md["parameter_count"] == nil {
		t.Fatalf("inspect metadata %v", md)
	}

	out, _, err = d.ctl(t, "hw", "-o", "json")
	var prof struct {
		Platform string `json:"platform"`
		CPU      struct {
			PhysicalCores int `json:"physical_cores"`
		} `json:"cpu"`
		Recommended struct {
			Threads struct{ Value int } `json:"threads"`
		} `json:"recommended"`
	}
	if err != nil || json.Unmarshal([]byte(out), &prof) != nil || prof.Platform == "" || prof.CPU.PhysicalCores < 1 || prof.Recommended.Threads.Value < 1 {
		t.Fatalf("emberctl hw -o json: %v\n%s", err, out)
	}
	out, _, _ = d.ctl(t, "status")
	if !strings.Contains(out, "thermal") || !strings.Contains(out, "disk") {
		t.Errorf("status does not show the governors:\n%s", out)
	}

	out, _, err = d.ctl(t, "models", "ls")
	if err != nil || !strings.Contains(out, "tiny *") || !strings.Contains(out, "loaded") {
		t.Fatalf("models ls: %v\n%s", err, out)
	}

	out, _, err = d.ctl(t, "chat", "--max-tokens", "4", "--show-prompt", "hello there")
	if err != nil {
		t.Fatalf("chat: %v", err)
	}

	// Interactive chat keeps the conversation: the second turn's prompt
	// holds the first exchange; /reset forgets it.
	chat := exec.Command(filepath.Join(binDir, "emberctl"), "chat", "--max-tokens", "3", "--show-prompt")
	chat.Env = append(os.Environ(), "EMBER_SOCKET="+d.socket)
	chat.Stdin = strings.NewReader("first question\nsecond question\n/reset\nthird question\n/exit\n")
	var chatErr bytes.Buffer
	chat.Stderr = &chatErr
	if err := chat.Run(); err != nil {
		t.Fatalf("interactive chat: %v\n%s", err, chatErr.String())
	}
	prompts := strings.Split(chatErr.String(), "[prompt]")
	if len(prompts) != 4 {
		t.Fatalf("want 3 prompts, got:\n%s", chatErr.String())
	}
	if !strings.Contains(prompts[2], "first question") || !strings.Contains(prompts[2], "second question") {
		t.Errorf("second turn lacks the history:\n%s", prompts[2])
	}
	if strings.Contains(prompts[3], "first question") || !strings.Contains(prompts[3], "third question") {
		t.Errorf("/reset did not clear the history:\n%s", prompts[3])
	}

	_, stderr, err := d.ctl(t, "generate", "-m", "nope", "hi")
	if exitCode(err) != 1 || !strings.Contains(stderr, `model "nope" is unknown`) {
		t.Fatalf("unknown model: %v %q", err, stderr)
	}
	_, stderr, err = d.ctl(t, "generate", "--bogus-flag", "hi")
	if exitCode(err) != 2 || !strings.Contains(stderr, "bogus-flag") {
		t.Fatalf("bad flag: %v %q", err, stderr)
	}
}

func TestEmberctlExplainsAnUnreachableDaemon(t *testing.T) {
	cmd := exec.Command(filepath.Join(binDir, "emberctl"), "status")
	cmd.Env = append(os.Environ(), "EMBER_SOCKET="+filepath.Join(t.TempDir(), "none.sock"))
	out, err := cmd.CombinedOutput()
	if exitCode(err) != 1 || !strings.Contains(string(out), "cannot reach emberd") || !strings.Contains(string(out), "none.sock") {
		t.Fatalf("unreachable daemon: %v\n%s", err, out)
	}
}

func TestSIGTERMShutsDownGracefully(t *testing.T) {
	long := synth.Tiny
	long.ContextLength = 16384
	dir := t.TempDir()
	d := startDaemon(t, writeConfigFor(t, dir, testkit.WriteModel(t, long), ""))
	// A stream far longer than shutdown_timeout (2s) is in flight when the
	// signal arrives: shutdown waits for it that long, then cancels it.
	gen := exec.Command(filepath.Join(binDir, "emberctl"), "generate", "--max-tokens", "16000", "--ignore-eos", "a long story")
	gen.Env = append(os.Environ(), "EMBER_SOCKET="+d.socket)
	if err := gen.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.exited:
		if err != nil {
			t.Fatalf("emberd exited with %v after SIGTERM", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("emberd did not stop within 15s of SIGTERM")
	}
	d.exited <- nil // for the cleanup
	if took := time.Since(start); took < 2*time.Second || took > 10*time.Second {
		t.Errorf("shutdown took %v; want the 2s shutdown_timeout, then a prompt exit", took)
	}
	if err := gen.Wait(); err == nil {
		t.Error("the in-flight stream finished normally; it should have been cut at the deadline")
	}
	if _, err := os.Stat(d.socket); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
	if !strings.Contains(d.stderr.String(), "emberd stopping") {
		t.Errorf("no shutdown log:\n%s", d.stderr)
	}
	st, err := store.Open(filepath.Join(d.dir, "state", "ember.db"), store.Options{})
	if err != nil {
		t.Fatalf("store after shutdown: %v", err)
	}
	defer st.Close()
	if err := st.Check(); err != nil {
		t.Fatalf("store after shutdown: %v", err)
	}
}

func TestMissingLibrariesAreAClearError(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "")
	data, _ := os.ReadFile(cfg)
	data = bytes.Replace(data, []byte("lib_dir: "+testkit.LibDir(t)), []byte("lib_dir: "+dir+"/nolibs"), 1)
	os.WriteFile(cfg, data, 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(binDir, "emberd"), "--config", cfg).CombinedOutput()
	if exitCode(err) != 1 {
		t.Fatalf("exit %v, want 1\n%s", err, out)
	}
	for _, want := range []string{dir + "/nolibs", "libllama.so", "make llama-libs"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("error lacks %q:\n%s", want, out)
		}
	}
}

func TestHardwareProfileFromAFixtureRoot(t *testing.T) {
	root := filepath.Join(testkit.RepoRoot(), "hw", "testdata", "raspberry-pi-5")
	cmd := exec.Command(filepath.Join(binDir, "emberd"), "hw", "-o", "json")
	cmd.Env = append(os.Environ(), "HOST_PROC="+root+"/proc", "HOST_SYS="+root+"/sys", "HOST_ETC="+root+"/etc")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Platform string `json:"platform"`
		CPU      struct {
			PhysicalCores int `json:"physical_cores"`
		} `json:"cpu"`
		Recommended struct {
			Threads struct {
				Value  int    `json:"value"`
				Reason string `json:"reason"`
			} `json:"threads"`
		} `json:"recommended"`
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	if p.Platform != "raspberry-pi-5" || p.CPU.PhysicalCores != 4 || p.Recommended.Threads.Value != 4 || p.Recommended.Threads.Reason == "" {
		t.Fatalf("profile %+v", p)
	}
}
