package jobs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ember-edge/ember/daemon/store"
)

// Dispatcher starts queued jobs, highest priority first, within each
// pipeline's rate limit and the governors' holds, as the engine has room.
// Run drives it; its other methods are safe for concurrent use.
type Dispatcher struct {
	*core
	exec   *Executor
	wake   chan struct{}
	limits *rateLimits

	runMu   sync.Mutex
	running map[uint64]context.CancelCauseFunc

	// holdBelow is set by the thermal governor: jobs below this priority
	// wait.
	holdBelow atomic.Int32
}

func newDispatcher(c *core, exec *Executor) *Dispatcher {
	return &Dispatcher{core: c, exec: exec, wake: make(chan struct{}, 1), limits: newRateLimits(c.pipes),
		running: map[uint64]context.CancelCauseFunc{}}
}

// Poke wakes the dispatcher: a job was queued, or something it waits
// for changed.
func (d *Dispatcher) Poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// HoldBelow holds back queued jobs with a priority below p (0: none):
// the thermal governor's pause of low-priority pipelines.
func (d *Dispatcher) HoldBelow(p int) {
	d.holdBelow.Store(int32(p))
	d.Poke()
}

// Run dispatches queued jobs until ctx ends: jobs left running by a crash
// are queued again first; then jobs start as the engine has room. On
// return, running jobs have been cancelled; they stay running in the
// store and are queued again at the next start.
func (d *Dispatcher) Run(ctx context.Context) error {
	if d.exec.inf == nil {
		return errors.New("the job queue has no inference to run jobs on")
	}
	switch n, err := d.st.RequeueRunning(d.opts.Now()); {
	case errors.Is(err, store.ErrDiskFull):
		// A full disk must not keep emberd from starting: the
		// maintainer requeues these jobs once there is room.
		d.log.Warn("jobs interrupted by the last shutdown are requeued once the disk has room", "err", err)
	case err != nil:
		return fmt.Errorf("requeue interrupted jobs: %w", err)
	case n > 0:
		d.log.Info("requeued jobs interrupted by the last shutdown", "jobs", n)
	}
	changed, stop := d.pipes.Changed()
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	done := make(chan struct{}, 64)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := d.opts.Now()
		// A periodic look: a job waiting for its model starts once the
		// model is loaded, which nothing pokes about.
		wake := now.Add(time.Second)
		if free := d.concurrency() - d.RunningCount(); free > 0 {
			ready, held, err := d.st.ReadyJobs(now, free, d.skip(now))
			if err != nil {
				d.log.Error("read the job queue", "err", err)
				held = now.Add(time.Second)
			}
			for _, j := range ready {
				if !d.start(ctx, &wg, j, done) {
					break
				}
			}
			if !held.IsZero() && held.Before(wake) {
				wake = held
			}
			if next := d.limits.next(now); !next.IsZero() && next.Before(wake) {
				wake = next
			}
		}
		timer.Reset(max(wake.Sub(now), time.Millisecond))
		select {
		case <-ctx.Done():
			d.cancelAll()
			return nil
		case <-d.wake:
		case <-changed:
		case <-done:
		case <-timer.C:
		}
	}
}

// concurrency is how many jobs may run at once.
func (d *Dispatcher) concurrency() int {
	if d.opts.Concurrency > 0 {
		return d.opts.Concurrency
	}
	return max(d.exec.inf.Slots(), 1)
}

// RunningCount is how many jobs are running.
func (d *Dispatcher) RunningCount() int {
	d.runMu.Lock()
	defer d.runMu.Unlock()
	return len(d.running)
}

// Running reports whether the job is running in this process.
func (d *Dispatcher) Running(id uint64) bool {
	d.runMu.Lock()
	defer d.runMu.Unlock()
	_, ok := d.running[id]
	return ok
}

func (d *Dispatcher) cancelAll() {
	d.runMu.Lock()
	defer d.runMu.Unlock()
	for _, cancel := range d.running {
		cancel(errShutdown)
	}
}

// start marks a job running and runs it in a goroutine tracked by wg.
func (d *Dispatcher) start(ctx context.Context, wg *sync.WaitGroup, j store.Job, done chan<- struct{}) bool {
	// Registered before the state changes, so that Cancel finds every job
	// the store says is running.
	jctx, cancel := context.WithCancelCause(ctx)
	d.runMu.Lock()
	d.running[j.ID] = cancel
	d.runMu.Unlock()
	j, err := d.st.StartJob(ctx, j.ID, d.opts.Now())
	if err != nil {
		d.runMu.Lock()
		delete(d.running, j.ID)
		d.runMu.Unlock()
		cancel(nil)
		d.log.Warn("start job", "job", j.ID, "err", err)
		return false
	}
	d.limits.take(j.Pipeline, d.opts.Now())
	d.events.publish(j)
	wg.Go(func() {
		defer func() {
			cancel(nil)
			d.runMu.Lock()
			delete(d.running, j.ID)
			d.runMu.Unlock()
			select {
			case done <- struct{}{}:
			default:
			}
		}()
		d.exec.run(jctx, j)
	})
	return true
}

// Cancel cancels a job: a queued one at once, a running one by stopping
// its inference.
func (d *Dispatcher) Cancel(ctx context.Context, id uint64) (store.Job, error) {
	j, err := d.st.CancelJob(ctx, id, d.opts.Now())
	if err == nil {
		d.events.publish(j)
		return j, nil
	}
	d.runMu.Lock()
	cancel, running := d.running[id]
	d.runMu.Unlock()
	if !running {
		return store.Job{}, err
	}
	cancel(errCancelled)
	// The executor records the cancellation; wait briefly for it.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if j, err := d.st.Job(id); err == nil && j.State.Terminal() {
			return j, nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return d.st.Job(id)
}

// skip returns the filter for ReadyJobs: jobs below the hold, jobs of a
// pipeline over its rate, and jobs whose model is known but not loaded
// (they wait without spending attempts; an unknown model fails when the
// job runs). It reads the registry now: the filter runs inside a store
// transaction and must not open another.
func (d *Dispatcher) skip(now time.Time) func(store.Job) bool {
	loaded := map[string]bool{}
	for _, name := range d.exec.inf.LoadedNames() {
		loaded[name] = true
	}
	known := map[string]bool{}
	if entries, err := d.exec.reg.List(); err == nil {
		for _, e := range entries {
			known[e.Name] = true
		}
	}
	def, hasDef := d.exec.reg.Default()
	hold := int(d.holdBelow.Load())
	return func(j store.Job) bool {
		if j.Priority < hold || d.limits.limited(j.Pipeline, now) {
			return true
		}
		name := j.Model
		if name == "" {
			if !hasDef {
				return len(loaded) == 0
			}
			name = def.Name
		}
		return known[name] && !loaded[name]
	}
}

// errShutdown is the cause of job contexts cancelled by shutdown.
var errShutdown = errors.New("shutting down")
