package uplink

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ember-edge/ember/daemon/store"
)

// countingHandler counts log records at Info and above, by message.
type countingHandler struct {
	mu   sync.Mutex
	msgs map[string]int
}

func (h *countingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.msgs[r.Message]++
	h.mu.Unlock()
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }
func (h *countingHandler) total() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, c := range h.msgs {
		n += c
	}
	return n
}

// refusedAddr returns a loopback address nothing listens on.
func refusedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestOfflineSleeps: an uplink with no broker to reach, over a simulated
// hour of backoff from 1s to 5m, dials a few dozen times (log2(300)
// doublings, then one attempt per 150-300s), logs one line, and does
// nothing at all while its clock stands still.
func TestOfflineSleeps(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clk := NewFakeClock(start)
	logs := &countingHandler{msgs: map[string]int{}}
	st := OpenTestStore(t)
	u, err := New(Options{
		URL: "tcp://" + refusedAddr(t), Fleet: "plant", Device: "dev-1", Outbox: StoreOutbox{st}, Settings: st, SettingsNotFound: store.ErrNotFound,
		BackoffMin: time.Second, BackoffMax: 5 * time.Minute, ConnectTimeout: 5 * time.Second,
		Clock: clk, Logger: slog.New(logs), Rand: rand.New(rand.NewPCG(1, 2)).Float64,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	end := start.Add(time.Hour)
	for {
		at, ok := clk.NextTimer(10 * time.Second)
		if !ok {
			t.Fatal("the offline uplink set no backoff timer")
		}
		if at.After(end) {
			break
		}
		created := clk.TimersCreated()
		clk.Set(at)
		if _, ok := clk.WaitNewTimer(created, 10*time.Second); !ok {
			t.Fatal("no new backoff timer after a failed dial")
		}
	}
	s := u.Status()
	// Doublings 1s..256s (9 pauses, ~190-380s in all), then pauses of
	// 150-300s: 1 + 9 + 11..22 attempts.
	t.Logf("%d dial attempts in a simulated hour, %d timers", s.DialAttempts, clk.TimersCreated())
	if s.DialAttempts < 18 || s.DialAttempts > 36 {
		t.Errorf("%d dial attempts in an hour offline, want 18-36", s.DialAttempts)
	}
	if s.State != StateOffline || s.NextAttempt.IsZero() || s.Connects != 0 {
		t.Errorf("status %+v", s)
	}
	if n := logs.total(); n != 1 {
		t.Errorf("%d log lines at info and above while offline, want 1: %v", n, logs.msgs)
	}
	if tr := s.Transitions["connecting->offline"]; tr != s.DialAttempts {
		t.Errorf("connecting->offline counted %d times for %d attempts", tr, s.DialAttempts)
	}

	// With the clock still, nothing happens: no goroutine spins.
	timers, goroutines := clk.TimersCreated(), runtime.NumGoroutine()
	time.Sleep(300 * time.Millisecond)
	if s2 := u.Status(); s2.DialAttempts != s.DialAttempts || clk.TimersCreated() != timers {
		t.Errorf("while the clock stood still: %d more dials, %d more timers",
			s2.DialAttempts-s.DialAttempts, clk.TimersCreated()-timers)
	}
	if g := runtime.NumGoroutine(); g > goroutines+2 {
		t.Errorf("goroutines grew from %d to %d while idle", goroutines, g)
	}

	// Trigger dials at once, without the clock moving.
	u.Trigger()
	waitFor(t, "a dial on Trigger", func() bool { return u.Status().DialAttempts == s.DialAttempts+1 })
	// Poke does not: a new record is no reason to dial early.
	u.Poke()
	time.Sleep(100 * time.Millisecond)
	if n := u.Status().DialAttempts; n != s.DialAttempts+1 {
		t.Errorf("Poke dialed: %d attempts", n)
	}
}

// TestLinkAppearsWithinOneStep: once the broker can be reached, the next
// backoff step's dial connects.
func TestLinkAppearsWithinOneStep(t *testing.T) {
	var mu sync.Mutex
	reachable := false
	clk := NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	c := newFakeConn(8, true)
	r := newFakeRig(t, Options{BackoffMin: time.Second, BackoffMax: 5 * time.Minute, Clock: clk},
		func(int) (*fakeConn, error) {
			mu.Lock()
			defer mu.Unlock()
			if !reachable {
				return nil, &net.OpError{Op: "dial", Err: errRefused}
			}
			return c, nil
		})
	r.run(t)
	for range 12 { // deep into the backoff
		at, _ := clk.NextTimer(10 * time.Second)
		n := clk.TimersCreated()
		clk.Set(at)
		clk.WaitNewTimer(n, 10*time.Second)
	}
	before := r.u.Status().DialAttempts
	mu.Lock()
	reachable = true
	mu.Unlock()
	at, _ := clk.NextTimer(10 * time.Second)
	clk.Set(at)
	waitFor(t, "online", func() bool { return r.u.Status().State.Online() })
	if n := r.u.Status().DialAttempts - before; n != 1 {
		t.Errorf("%d dials after the link appeared, want 1", n)
	}
}

var errRefused = errors.New("connection refused")
