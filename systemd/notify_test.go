package systemd_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ember-edge/ember/daemon/llamacpp"
	"github.com/ember-edge/ember/daemon/sdnotify"
	"github.com/ember-edge/ember/daemon/sdnotify/sdnotifytest"
	"github.com/ember-edge/ember/internal/testkit"
)

// TestEmberdNotifiesSystemd runs the installed emberd as systemd would
// start emberd.service — NOTIFY_SOCKET and WATCHDOG_USEC set — with a
// stand-in for systemd's notification socket, and checks the protocol: READY=1
// only once the API answers, WATCHDOG=1 at half the interval, STOPPING=1 when
// SIGTERM arrives, every datagram from emberd's own PID (NotifyAccess=main).
func TestEmberdNotifiesSystemd(t *testing.T) {
	d := installed(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "ember.sock")
	cfg := filepath.Join(dir, "ember.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`version: 1
device_id: notify-test
state_dir: %s/state
shutdown_timeout: 2s
grpc: {socket: %s}
mqtt: {embedded: {listen: ""}}
metrics: {listen: ""}
engine: {threads: 1}
models:
  - {name: tiny, path: %s}
`, dir, sock, testkit.TinyModel(t))), 0o644)

	m := sdnotifytest.NewManager(t, false)
	const watchdog = 600 * time.Millisecond
	cmd := exec.Command(filepath.Join(d, "usr/local/bin/emberd"), "--config", cfg)
	cmd.Env = append(os.Environ(),
		sdnotify.EnvSocket+"="+m.Addr(),
		fmt.Sprintf("%s=%d", sdnotify.EnvWatchdogUsec, watchdog.Microseconds()),
		llamacpp.EnvLibDir+"=", // the installed libraries, found beside the binary
	)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("emberd log:\n%s", stderr.String())
		}
	})
	pid := cmd.Process.Pid

	ready, before := m.WaitFor(t, "READY=1", 30*time.Second)
	if ready.PID != pid {
		t.Errorf("READY=1 from pid %d, want emberd's %d", ready.PID, pid)
	}
	// The moment READY=1 arrives the API must answer: systemd starts the
	// units ordered after emberd.service now.
	ctl := exec.Command(filepath.Join(d, "usr/local/bin/emberctl"), "status", "--socket", sock)
	if out, err := ctl.CombinedOutput(); err != nil || !strings.Contains(string(out), "notify-test") {
		t.Errorf("emberctl status right after READY=1: %v\n%s", err, out)
	}
	for _, msg := range before {
		if msg.Has("WATCHDOG=1") {
			t.Errorf("watchdog ping before READY=1: %v", msg)
		}
	}
	if status, ok := ready.Get("STATUS"); ok {
		t.Logf("status with READY=1: %q", status)
	}

	// Pings every half interval: at least 4 within 4 intervals.
	start := time.Now()
	pings := 0
	for time.Since(start) < 4*watchdog {
		msg, err := m.Next(4*watchdog - time.Since(start))
		if err != nil {
			break
		}
		if msg.PID != pid {
			t.Errorf("notification from pid %d, want %d: %v", msg.PID, pid, msg)
		}
		if msg.Has("WATCHDOG=1") {
			pings++
		}
	}
	if pings < 4 {
		t.Errorf("%d watchdog pings in %v with WATCHDOG_USEC=%v; want at least 4", pings, 4*watchdog, watchdog)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopping, _ := m.WaitFor(t, "STOPPING=1", 10*time.Second)
	if stopping.PID != pid {
		t.Errorf("STOPPING=1 from pid %d, want %d", stopping.PID, pid)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("emberd exited with %v after SIGTERM", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("emberd did not exit within 15s of SIGTERM")
	}
}
