package jobs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ember-edge/ember/daemon/store"
)

// Run dispatches queued jobs until ctx ends: jobs left running by a crash
// are queued again first; then, highest priority first and within each
// pipeline's rate limit, jobs start as the engine has room. On return,
// running jobs have been cancelled; they stay running in the store and
// are queued again at the next start.
func (m *Manager) Run(ctx context.Context) error {
	switch n, err := m.st.RequeueRunning(m.opts.Now()); {
	case errors.Is(err, store.ErrDiskFull):
		// A full disk must not keep emberd from starting: Maintain
		// requeues these jobs once there is room.
		m.log.Warn("jobs interrupted by the last shutdown are requeued once the disk has room", "err", err)
	case err != nil:
		return fmt.Errorf("requeue interrupted jobs: %w", err)
	case n > 0:
		m.log.Info("requeued jobs interrupted by the last shutdown", "jobs", n)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	done := make(chan struct{}, 64)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := m.opts.Now()
		// A periodic look: a job waiting for its model starts once the
		// model is loaded, which nothing pokes about.
		wake := now.Add(time.Second)
		if free := m.concurrency() - m.runningCount(); free > 0 {
			ready, held, err := m.st.ReadyJobs(now, free, m.skip(now))
			if err != nil {
				m.log.Error("read the job queue", "err", err)
				held = now.Add(time.Second)
			}
			for _, j := range ready {
				if !m.start(ctx, &wg, j, done) {
					break
				}
			}
			if !held.IsZero() && held.Before(wake) {
				wake = held
			}
			if next := m.nextToken(now); !next.IsZero() && next.Before(wake) {
				wake = next
			}
		}
		timer.Reset(max(wake.Sub(now), time.Millisecond))
		select {
		case <-ctx.Done():
			m.cancelAll()
			return nil
		case <-m.wake:
		case <-done:
		case <-timer.C:
		}
	}
}

// concurrency is how many jobs may run at once.
func (m *Manager) concurrency() int {
	if m.opts.Concurrency > 0 {
		return m.opts.Concurrency
	}
	n := 0
	for _, lm := range m.eng.Models() {
		n += lm.Settings().Parallel
	}
	return max(n, 1)
}

func (m *Manager) runningCount() int {
	m.runMu.Lock()
	defer m.runMu.Unlock()
	return len(m.running)
}

func (m *Manager) cancelAll() {
	m.runMu.Lock()
	defer m.runMu.Unlock()
	for _, cancel := range m.running {
		cancel(errShutdown)
	}
}

// start marks a job running and runs it in a goroutine tracked by wg.
func (m *Manager) start(ctx context.Context, wg *sync.WaitGroup, j store.Job, done chan<- struct{}) bool {
	// Registered before the state changes, so that Cancel finds every job
	// the store says is running.
	jctx, cancel := context.WithCancelCause(ctx)
	m.runMu.Lock()
	m.running[j.ID] = cancel
	m.runMu.Unlock()
	j, err := m.st.StartJob(ctx, j.ID, m.opts.Now())
	if err != nil {
		m.runMu.Lock()
		delete(m.running, j.ID)
		m.runMu.Unlock()
		cancel(nil)
		m.log.Warn("start job", "job", j.ID, "err", err)
		return false
	}
	m.takeToken(j.Pipeline)
	m.events.publish(j)
	wg.Go(func() {
		defer func() {
			cancel(nil)
			m.runMu.Lock()
			delete(m.running, j.ID)
			m.runMu.Unlock()
			select {
			case done <- struct{}{}:
			default:
			}
		}()
		m.run(jctx, j)
	})
	return true
}

// Cancel cancels a job: a queued one at once, a running one by stopping
// its inference.
func (m *Manager) Cancel(ctx context.Context, id uint64) (store.Job, error) {
	j, err := m.st.CancelJob(ctx, id, m.opts.Now())
	if err == nil {
		m.events.publish(j)
		return j, nil
	}
	m.runMu.Lock()
	cancel, running := m.running[id]
	m.runMu.Unlock()
	if !running {
		return store.Job{}, err
	}
	cancel(errCancelled)
	// The runner records the cancellation; wait briefly for it.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if j, err := m.st.Job(id); err == nil && j.State.Terminal() {
			return j, nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return m.st.Job(id)
}

// skip returns the filter for ReadyJobs: jobs of a pipeline over its
// rate, and jobs whose model is known but not loaded (they wait without
// spending attempts; an unknown model fails when the job runs). It reads
// the registry now: the filter runs inside a store transaction and must
// not open another.
func (m *Manager) skip(now time.Time) func(store.Job) bool {
	loaded := map[string]bool{}
	for _, lm := range m.eng.Models() {
		loaded[lm.Name()] = true
	}
	known := map[string]bool{}
	if entries, err := m.reg.List(); err == nil {
		for _, e := range entries {
			known[e.Name] = true
		}
	}
	def, hasDef := m.reg.Default()
	hold := int(m.holdBelow.Load())
	return func(j store.Job) bool {
		if j.Priority < hold {
			return true
		}
		if b := m.bucket(j.Pipeline, now); b != nil {
			m.limiterMu.Lock()
			limited := !b.allow(now)
			m.limiterMu.Unlock()
			if limited {
				return true
			}
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

func (m *Manager) bucket(name string, now time.Time) *tokenBucket {
	p, ok := m.Pipeline(name)
	if !ok || p.Config().RateLimit.PerSecond <= 0 {
		return nil
	}
	m.limiterMu.Lock()
	defer m.limiterMu.Unlock()
	b, ok := m.limiters[name]
	if !ok {
		rl := p.Config().RateLimit
		b = newTokenBucket(rl.PerSecond, rl.Burst, now)
		m.limiters[name] = b
	}
	return b
}

func (m *Manager) takeToken(name string) {
	now := m.opts.Now()
	if b := m.bucket(name, now); b != nil {
		m.limiterMu.Lock()
		b.take(now)
		m.limiterMu.Unlock()
	}
}

// nextToken is the earliest time a rate-limited pipeline may start again.
func (m *Manager) nextToken(now time.Time) time.Time {
	m.limiterMu.Lock()
	defer m.limiterMu.Unlock()
	var next time.Time
	for _, b := range m.limiters {
		if t := b.next(now); t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return next
}
