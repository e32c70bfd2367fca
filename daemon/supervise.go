package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/thejerf/suture/v4"

	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/daemon/telemetry"
)

// errUnsafe marks a failure after which the daemon must not go on
// serving: acknowledging messages it cannot store would lose them.
var errUnsafe = errors.New("the daemon cannot serve safely")

// unsafe reports whether err leaves the daemon unable to keep its
// promises: the store is gone.
func unsafe(err error) bool {
	return errors.Is(err, errUnsafe) || errors.Is(err, store.ErrClosed) || errors.Is(err, store.ErrLocked)
}

// component is one long-running part of the daemon under supervision.
type component struct {
	name string
	run  func(ctx context.Context) error
	// critical components stop the daemon when they fail: they cannot be
	// restarted (their listeners were opened once, at start) or the
	// daemon is useless without them.
	critical bool
}

// Supervisor runs the daemon's components (syncthing's model, through
// suture): a component that fails is restarted after a backoff that
// doubles with each consecutive failure, logged and counted, while the
// others go on. Only a critical component's failure, or one that leaves
// the store unusable, stops the daemon.
type Supervisor struct {
	sup *suture.Supervisor
	log *slog.Logger
	// Backoff is the first restart delay, doubling up to MaxBackoff.
	backoff, maxBackoff time.Duration

	mu     sync.Mutex
	status map[string]*telemetry.Component
}

// newSupervisor returns a supervisor that gives each component stop to
// return once its context ends (the gRPC server's graceful stop needs
// shutdown_timeout) before it reports it and moves on.
func newSupervisor(log *slog.Logger, stop time.Duration) *Supervisor {
	s := &Supervisor{log: log, backoff: time.Second, maxBackoff: time.Minute, status: map[string]*telemetry.Component{}}
	s.sup = suture.New("emberd", suture.Spec{
		// Backoff is per component (below); suture's own whole-tree pause
		// after a burst of failures would hold back healthy components.
		FailureThreshold: 1e9,
		Timeout:          max(stop, 10*time.Second),
		EventHook:        func(suture.Event) {},
	})
	return s
}

// Add supervises c. It may be called before or during Serve.
func (s *Supervisor) Add(c component) {
	s.mu.Lock()
	s.status[c.name] = &telemetry.Component{Name: c.name}
	s.mu.Unlock()
	s.sup.Add(&supervised{component: c, s: s})
}

// Serve runs the components until ctx ends (nil) or one fails in a way
// that stops the daemon (that error).
func (s *Supervisor) Serve(ctx context.Context) error {
	err := s.sup.Serve(ctx)
	if err == nil || ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil
	}
	return err
}

// Status returns every component's health, by name.
func (s *Supervisor) Status() []telemetry.Component {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]telemetry.Component, 0, len(s.status))
	for _, st := range s.status {
		out = append(out, *st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (s *Supervisor) update(name string, f func(*telemetry.Component)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s.status[name])
}

// supervised adapts a component to suture.Service.
type supervised struct {
	component
	s *Supervisor
	// failures counts consecutive failures; it is reset once a run has
	// lasted longer than the backoff it waited for.
	failures int
}

func (x *supervised) String() string { return x.name }

func (x *supervised) Serve(ctx context.Context) error {
	if x.failures > 0 {
		wait := min(x.s.backoff<<min(x.failures-1, 16), x.s.maxBackoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
	x.s.update(x.name, func(st *telemetry.Component) { st.Running = true })
	began := time.Now()
	err := x.runSafely(ctx)
	x.s.update(x.name, func(st *telemetry.Component) { st.Running = false })
	switch {
	case ctx.Err() != nil:
		return nil
	case err == nil:
		// A component that finishes its work (hashing the models) is done.
		x.s.update(x.name, func(st *telemetry.Component) { st.Done = true })
		return suture.ErrDoNotRestart
	case x.critical || unsafe(err):
		x.s.log.Error("component failed; emberd stops", "component", x.name, "err", err)
		return fmt.Errorf("%s: %w (%w)", x.name, err, suture.ErrTerminateSupervisorTree)
	}
	if time.Since(began) > x.s.maxBackoff {
		x.failures = 0
	}
	x.failures++
	x.s.update(x.name, func(st *telemetry.Component) {
		st.Restarts++
		st.LastError, st.LastFailure = err.Error(), time.Now()
	})
	x.s.log.Warn("component failed; restarting it", "component", x.name, "err", err,
		"in", min(x.s.backoff<<min(x.failures-1, 16), x.s.maxBackoff), "consecutive_failures", x.failures)
	return err
}

// runSafely turns a panic into an error, so that it is counted and
// backed off like any failure.
func (x *supervised) runSafely(ctx context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return x.run(ctx)
}
