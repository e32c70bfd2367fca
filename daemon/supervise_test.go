package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/daemon/telemetry"
)

// fastSupervisor restarts after milliseconds, not seconds.
func fastSupervisor() *Supervisor {
	s := newSupervisor(slog.New(slog.DiscardHandler), time.Second)
	s.backoff, s.maxBackoff = 5*time.Millisecond, 40*time.Millisecond
	return s
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func status(s *Supervisor, name string) telemetry.Component {
	for _, st := range s.Status() {
		if st.Name == name {
			return st
		}
	}
	return telemetry.Component{}
}

func TestAFailingComponentIsRestartedWhileTheOthersRun(t *testing.T) {
	s := fastSupervisor()
	var runs, healthyStarts atomic.Int32
	s.Add(component{name: "flaky", run: func(ctx context.Context) error {
		if runs.Add(1) <= 3 {
			return errors.New("connection reset by peer")
		}
		<-ctx.Done()
		return nil
	}})
	s.Add(component{name: "healthy", run: func(ctx context.Context) error {
		healthyStarts.Add(1)
		<-ctx.Done()
		return nil
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	waitFor(t, "the fourth run", func() bool { return runs.Load() >= 4 && status(s, "flaky").Running })
	st := status(s, "flaky")
	if st.Restarts != 3 || st.LastError != "connection reset by peer" || st.LastFailure.IsZero() {
		t.Fatalf("flaky status = %+v, want 3 restarts and the last error", st)
	}
	if n := healthyStarts.Load(); n != 1 || !status(s, "healthy").Running {
		t.Fatalf("the healthy component was started %d times; a neighbour's failure must not touch it", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel = %v, want nil", err)
	}
}

func TestRestartsBackOff(t *testing.T) {
	s := fastSupervisor()
	s.backoff, s.maxBackoff = 20*time.Millisecond, time.Second
	var mu sync.Mutex
	var starts []time.Time
	var n atomic.Int32
	s.Add(component{name: "broken", run: func(ctx context.Context) error {
		mu.Lock()
		starts = append(starts, time.Now())
		mu.Unlock()
		n.Add(1)
		return errors.New("broker refused the connection")
	}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Serve(ctx)
	waitFor(t, "four runs", func() bool { return n.Load() >= 4 })
	cancel()
	mu.Lock()
	defer mu.Unlock()
	// The waits double: 20, 40, 80 ms (at least).
	for i, want := range []time.Duration{20, 40, 80} {
		if got := starts[i+1].Sub(starts[i]); got < want*time.Millisecond {
			t.Errorf("wait before restart %d = %v, want at least %v ms", i+1, got, want)
		}
	}
}

func TestAPanicIsAFailureNotACrash(t *testing.T) {
	s := fastSupervisor()
	var runs atomic.Int32
	s.Add(component{name: "telemetry", run: func(ctx context.Context) error {
		if runs.Add(1) == 1 {
			var m map[string]int
			m["boom"]++ // a nil map write: a bug in a collector
		}
		<-ctx.Done()
		return nil
	}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Serve(ctx)
	waitFor(t, "the restart after the panic", func() bool { return runs.Load() == 2 })
	if st := status(s, "telemetry"); st.Restarts != 1 {
		t.Fatalf("status = %+v, want one restart", st)
	}
}

func TestWhatStopsTheDaemon(t *testing.T) {
	cases := []struct {
		name string
		c    component
		want error // nil: Serve goes on until cancelled
	}{
		{"a critical component fails", component{name: "api", critical: true, run: func(context.Context) error {
			return errors.New("serve gRPC: listener closed")
		}}, errors.New("api: serve gRPC: listener closed")},
		{"the store is closed under a component", component{name: "dispatcher", run: func(context.Context) error {
			return fmt.Errorf("read the job queue: %w", store.ErrClosed)
		}}, store.ErrClosed},
		{"a one-shot component finishes", component{name: "model-hash", run: func(context.Context) error { return nil }}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := fastSupervisor()
			s.Add(c.c)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			err := s.Serve(ctx)
			switch {
			case c.want == nil && err != nil:
				t.Fatalf("Serve = %v, want it to run on", err)
			case c.want != nil && err == nil:
				t.Fatalf("Serve = nil, want the daemon to stop with %v", c.want)
			case c.want != nil && !errors.Is(err, c.want) && !strings.Contains(err.Error(), c.want.Error()):
				t.Fatalf("Serve = %v, want %v", err, c.want)
			}
			if st := status(s, c.c.name); c.want == nil && (st.Restarts != 0 || !st.Done || st.Running) {
				t.Fatalf("a finished one-shot component: %+v, want done, not restarted", st)
			}
		})
	}
}
