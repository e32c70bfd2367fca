package sdnotify_test

import (
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ember-edge/ember/daemon/sdnotify"
	"github.com/ember-edge/ember/daemon/sdnotify/sdnotifytest"
)

const wait = 5 * time.Second

func TestNotificationsArrive(t *testing.T) {
	for _, abstract := range []bool{false, true} {
		name := "path"
		if abstract {
			name = "abstract"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			m := sdnotifytest.NewManager(t, abstract)
			if abstract != strings.HasPrefix(m.Addr(), "@") {
				t.Fatalf("address %q", m.Addr())
			}
			n, err := sdnotify.New(m.Addr())
			if err != nil {
				t.Fatal(err)
			}
			if !n.Enabled() || n.Addr() != m.Addr() {
				t.Fatalf("notifier for %q: enabled %v, addr %q", m.Addr(), n.Enabled(), n.Addr())
			}
			for _, c := range []struct {
				name string
				send func() error
				want []string
			}{
				{"ready", n.Ready, []string{"READY=1"}},
				{"status", func() error { return n.Status("loading model qwen") }, []string{"STATUS=loading model qwen"}},
				{"status on one line", func() error { return n.Status("model failed:\nout of memory\r\n") }, []string{"STATUS=model failed: out of memory "}},
				{"watchdog", n.Watchdog, []string{"WATCHDOG=1"}},
				{"extend timeout", func() error { return n.ExtendTimeout(90 * time.Second) }, []string{"EXTEND_TIMEOUT_USEC=90000000"}},
				{"several in one datagram", func() error { return n.Notify("READY=1", "STATUS=serving 2 models") }, []string{"READY=1", "STATUS=serving 2 models"}},
				{"stopping", n.Stopping, []string{"STOPPING=1"}},
			} {
				if err := c.send(); err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				msg, err := m.Next(wait)
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				if !slices.Equal(msg.Lines, c.want) {
					t.Errorf("%s: got %q, want %q", c.name, msg.Lines, c.want)
				}
				// systemd's NotifyAccess=main accepts only datagrams whose
				// credentials name the main process.
				if msg.PID != os.Getpid() {
					t.Errorf("%s: sender pid %d, want %d", c.name, msg.PID, os.Getpid())
				}
			}
		})
	}
}

func TestReloadingCarriesTheMonotonicClock(t *testing.T) {
	t.Parallel()
	m := sdnotifytest.NewManager(t, false)
	n, _ := sdnotify.New(m.Addr())
	before := monotonicUsec(t)
	if err := n.Reloading(); err != nil {
		t.Fatal(err)
	}
	after := monotonicUsec(t)
	msg, err := m.Next(wait)
	if err != nil {
		t.Fatal(err)
	}
	usec, _ := msg.Get("MONOTONIC_USEC")
	got, err := strconv.ParseInt(usec, 10, 64)
	if !msg.Has("RELOADING=1") || len(msg.Lines) != 2 || err != nil || got < before || got > after {
		t.Fatalf("got %v; want RELOADING=1 and MONOTONIC_USEC within [%d, %d]", msg, before, after)
	}
}

func monotonicUsec(t *testing.T) int64 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano() / 1000
}

func TestDisabledNotifierDoesNothing(t *testing.T) {
	t.Parallel()
	empty, err := sdnotify.New("")
	if err != nil {
		t.Fatal(err)
	}
	for name, n := range map[string]*sdnotify.Notifier{"empty address": empty, "nil": nil, "zero": {}} {
		if n.Enabled() || n.Addr() != "" {
			t.Errorf("%s: enabled", name)
		}
		for _, err := range []error{n.Ready(), n.Stopping(), n.Reloading(), n.Watchdog(), n.Status("x"), n.ExtendTimeout(time.Second), n.Notify("X=1")} {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
}

func TestBadAddresses(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, addr string
		want       error
	}{
		{"relative path", "run/notify", sdnotify.ErrBadAddress},
		{"bare at sign", "@", sdnotify.ErrBadAddress},
		{"path too long", "/" + strings.Repeat("a", 107), sdnotify.ErrBadAddress},
		{"abstract too long", "@" + strings.Repeat("a", 108), sdnotify.ErrBadAddress},
		{"vsock", "vsock:2:1234", sdnotify.ErrUnsupportedAddress},
		{"vsock datagram", "vsock-dgram:2:1234", sdnotify.ErrUnsupportedAddress},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := sdnotify.New(c.addr); !errors.Is(err, c.want) {
				t.Fatalf("New(%q) = %v, want %v", c.addr, err, c.want)
			}
		})
	}
	// The longest addresses that fit are accepted.
	for _, addr := range []string{"/" + strings.Repeat("a", 106), "@" + strings.Repeat("a", 107)} {
		if _, err := sdnotify.New(addr); err != nil {
			t.Errorf("New(%d bytes): %v", len(addr), err)
		}
	}
}

func TestMalformedStatesAreRefused(t *testing.T) {
	t.Parallel()
	m := sdnotifytest.NewManager(t, false)
	n, _ := sdnotify.New(m.Addr())
	for _, state := range []string{"READY", "=1", "READY=1\nSTOPPING=1", "STATUS=a\x00b"} {
		if err := n.Notify(state); !errors.Is(err, sdnotify.ErrBadState) {
			t.Errorf("Notify(%q) = %v, want ErrBadState", state, err)
		}
	}
	if err := n.ExtendTimeout(0); !errors.Is(err, sdnotify.ErrBadState) {
		t.Errorf("ExtendTimeout(0) = %v", err)
	}
	if msg, err := m.Next(100 * time.Millisecond); err == nil {
		t.Fatalf("a malformed state was sent: %v", msg)
	}
}

func TestSendToAMissingSocketFails(t *testing.T) {
	t.Parallel()
	n, err := sdnotify.New(t.TempDir() + "/gone.sock")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Ready(); err == nil || !strings.Contains(err.Error(), "gone.sock") {
		t.Fatalf("Ready to a missing socket: %v", err)
	}
}

// FromEnv and WatchdogInterval read the process environment; t.Setenv
// keeps these tests from running in parallel with any other.
func TestFromEnv(t *testing.T) {
	m := sdnotifytest.NewManager(t, true)
	t.Setenv(sdnotify.EnvSocket, m.Addr())
	n, err := sdnotify.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Ready(); err != nil {
		t.Fatal(err)
	}
	if msg, err := m.Next(wait); err != nil || !msg.Has("READY=1") {
		t.Fatalf("READY over $NOTIFY_SOCKET: %v %v", msg, err)
	}

	t.Setenv(sdnotify.EnvSocket, "")
	if n, err := sdnotify.FromEnv(); err != nil || n.Enabled() {
		t.Fatalf("unset NOTIFY_SOCKET: enabled %v, err %v", n.Enabled(), err)
	}
	t.Setenv(sdnotify.EnvSocket, "notify.sock")
	if _, err := sdnotify.FromEnv(); !errors.Is(err, sdnotify.ErrBadAddress) || !strings.Contains(err.Error(), "NOTIFY_SOCKET") {
		t.Fatalf("relative NOTIFY_SOCKET: %v", err)
	}
}

func TestWatchdogIntervalFromEnv(t *testing.T) {
	t.Setenv(sdnotify.EnvWatchdogUsec, "30000000")
	t.Setenv(sdnotify.EnvWatchdogPID, "")
	if d, err := sdnotify.WatchdogInterval(); err != nil || d != 30*time.Second {
		t.Fatalf("WATCHDOG_USEC=30000000: %v %v", d, err)
	}
	t.Setenv(sdnotify.EnvWatchdogPID, "1") // meant for pid 1, not this test
	if d, err := sdnotify.WatchdogInterval(); err != nil || d != 0 {
		t.Fatalf("WATCHDOG_PID of another process: %v %v", d, err)
	}
}
