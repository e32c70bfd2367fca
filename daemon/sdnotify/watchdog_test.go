package sdnotify_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ember-edge/ember/daemon/sdnotify"
	"github.com/ember-edge/ember/daemon/sdnotify/sdnotifytest"
)

// syncBuffer is a log sink the watchdog goroutine writes while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestWatchdogPingsOnlyWhileHealthy(t *testing.T) {
	t.Parallel()
	const interval = 200 * time.Millisecond // pings every 100ms
	m := sdnotifytest.NewManager(t, false)
	n, _ := sdnotify.New(m.Addr())
	var logs syncBuffer
	w := &sdnotify.Watchdog{Notifier: n, Interval: interval, Logger: slog.New(slog.NewTextHandler(&logs, nil))}

	var healthy atomic.Bool
	healthy.Store(true)
	checks := make(chan bool, 100)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() {
		ran <- w.Run(ctx, func() bool {
			ok := healthy.Load()
			select {
			case checks <- ok:
			default:
			}
			return ok
		})
	}()

	// Healthy: the first ping goes out at once, then one every half
	// interval.
	start := time.Now()
	var pings []time.Duration
	for len(pings) < 4 {
		msg, err := m.Next(wait)
		if err != nil {
			t.Fatalf("after %d pings: %v", len(pings), err)
		}
		if len(msg.Lines) != 1 || !msg.Has("WATCHDOG=1") {
			t.Fatalf("unexpected notification %v", msg)
		}
		pings = append(pings, time.Since(start))
	}
	if pings[0] > interval/2 {
		t.Errorf("first ping after %v; want it at once", pings[0])
	}
	if span := pings[3] - pings[0]; span < 250*time.Millisecond || span > 2*time.Second {
		t.Errorf("3 ping periods took %v; want about %v", span, 3*interval/2)
	}

	// Unhealthy: once a failed check is seen, nothing more is sent, for
	// longer than the interval the manager would wait.
	healthy.Store(false)
	waitForCheck(t, checks, false)
	for {
		if _, err := m.Next(20 * time.Millisecond); err != nil {
			break // drained a ping that raced with the flip
		}
	}
	if msg, err := m.Next(2 * interval); err == nil {
		t.Fatalf("pinged while unhealthy: %v", msg)
	}
	if !strings.Contains(logs.String(), "withholding watchdog pings") {
		t.Errorf("no log of withheld pings:\n%s", logs.String())
	}

	// Healthy again in time: pings resume within a period.
	healthy.Store(true)
	if msg, err := m.Next(interval + time.Second); err != nil || !msg.Has("WATCHDOG=1") {
		t.Fatalf("no ping after recovery: %v %v", msg, err)
	}
	if !strings.Contains(logs.String(), "pings resume") {
		t.Errorf("no log of resumed pings:\n%s", logs.String())
	}
	if n := strings.Count(logs.String(), "withholding"); n != 1 {
		t.Errorf("logged the failure %d times; want once per transition:\n%s", n, logs.String())
	}

	// Cancelled: Run returns promptly and pinging stops.
	cancel()
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	for {
		if _, err := m.Next(20 * time.Millisecond); err != nil {
			break
		}
	}
	if msg, err := m.Next(2 * interval); err == nil {
		t.Fatalf("pinged after Run returned: %v", msg)
	}
}

func waitForCheck(t *testing.T, checks <-chan bool, want bool) {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case got := <-checks:
			if got == want {
				return
			}
		case <-timeout:
			t.Fatalf("no health check returning %v", want)
		}
	}
}

func TestWatchdogWithoutAManagerReturnsAtOnce(t *testing.T) {
	t.Parallel()
	m := sdnotifytest.NewManager(t, true)
	enabled, _ := sdnotify.New(m.Addr())
	disabled, _ := sdnotify.New("")
	for name, w := range map[string]*sdnotify.Watchdog{
		"nil":               nil,
		"no notifier":       {Interval: time.Second},
		"disabled notifier": {Notifier: disabled, Interval: time.Second},
		"no interval":       {Notifier: enabled},
	} {
		done := make(chan error, 1)
		go func() { done <- w.Run(context.Background(), nil) }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		case <-time.After(time.Second):
			t.Fatalf("%s: Run did not return", name)
		}
	}
	if msg, err := m.Next(50 * time.Millisecond); err == nil {
		t.Fatalf("pinged without an interval: %v", msg)
	}
}

func TestWatchdogKeepsTryingWhenTheManagerIsGone(t *testing.T) {
	t.Parallel()
	n, _ := sdnotify.New(t.TempDir() + "/gone.sock")
	var logs syncBuffer
	w := &sdnotify.Watchdog{Notifier: n, Interval: 40 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var calls atomic.Int32
	if err := w.Run(ctx, func() bool { calls.Add(1); return true }); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if calls.Load() < 3 {
		t.Errorf("%d health checks in 300ms at a 20ms period", calls.Load())
	}
	if c := strings.Count(logs.String(), "watchdog ping not sent"); c != 1 {
		t.Errorf("failed sends logged %d times; want once until one succeeds:\n%s", c, logs.String())
	}
}
