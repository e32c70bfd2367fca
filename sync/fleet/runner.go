package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"
)

// runner is one Run of the updater: the goroutine that owns the state, a
// side effect in flight in a goroutine of its own, and the inputs it
// waits for.
type runner struct {
	u *Updater
	// work is the side effect in flight, nil when none.
	work *job
	// gcAt is the transition count at the last sweep of stray files.
	gcAt uint64
	// desired holds the latest payload of each desired topic.
	desired map[string][]byte
	// evalPending: a desired payload changed and waits to be evaluated
	// when the updater rests.
	evalPending bool
	// report: a report is due on the reported topic.
	report     bool
	subscribed map[string]bool
	// ignored holds, per retained topic, why its payload is not
	// followed (Status.Ignored).
	ignored map[string]string
	// lastNote is the last error evaluate set, so a later one clears it.
	lastNote string
	tick     <-chan time.Time
	waiters  []chan error // manual rollback callers
}

type job struct {
	name   string
	cancel context.CancelFunc
	done   chan outcome
}

// outcome is what a side effect ended with: an event to apply, or an
// error (ctx ended, a simulated crash) and no event.
type outcome struct {
	ev  Event
	err error
}

func (r *runner) loop(ctx context.Context) error {
	u := r.u
	r.gcAt = ^uint64(0)
	defer r.stop()
	if err := r.restoreDesired(); err != nil {
		return err
	}
	u.opts.Link.Notify(u.linkChanged)
	r.subscribed = map[string]bool{}
	r.subscribe()
	for {
		if u.st.Phase.Resting() && r.evalPending {
			// Chores at rest (retiring, sweeping) are idempotent and can
			// wait; a Retire the daemon keeps failing must not hold up
			// the next update.
			if err := r.cancelWork(); err != nil {
				return err
			}
			r.evalPending = false
			if err := r.evaluate(ctx); err != nil {
				return err
			}
		}
		if r.work == nil {
			r.startNext(ctx)
		}
		r.publish()
		if u.st.Phase == PhaseDownloading && r.tick == nil {
			r.tick = u.clock.After(u.opts.ReportInterval)
		}
		var done chan outcome
		if r.work != nil {
			done = r.work.done
		}
		select {
		case <-ctx.Done():
			return nil
		case o := <-done:
			name := r.work.name
			r.work = nil
			if err := r.finish(name, o); err != nil {
				return err
			}
		case <-u.wake:
			if err := r.takeInputs(ctx); err != nil {
				return err
			}
		case req := <-u.requests:
			if err := r.manualRollback(req); err != nil {
				return err
			}
		case <-r.tick:
			r.tick = nil
			r.report = r.report || u.st.Phase == PhaseDownloading
		}
	}
}

// stop cancels the side effect in flight and waits for it, and answers
// callers still waiting for a rollback.
func (r *runner) stop() {
	r.cancelWork()
	for _, w := range r.waiters {
		w <- errors.New("fleet updater stopped before the rollback finished")
	}
	r.waiters = nil
}

// cancelWork stops the side effect in flight and returns its outcome's
// error (a crash matters; a cancellation does not).
func (r *runner) cancelWork() error {
	if r.work == nil {
		return nil
	}
	r.work.cancel()
	o := <-r.work.done
	if r.work.name == "sweep" {
		r.gcAt = ^uint64(0) // not finished: sweep again
	}
	r.work = nil
	if errors.Is(o.err, errCrashed) {
		return errCrashed
	}
	return nil
}

// startNext starts the side effect the current phase names, if any.
func (r *runner) startNext(ctx context.Context) {
	u := r.u
	st := cloneState(u.st)
	var name string
	var fn func(context.Context, State) outcome
	switch st.Phase {
	case PhaseDownloading:
		name, fn = "download", u.download
	case PhaseVerifying:
		name, fn = "verify", u.verify
	case PhaseActivating:
		name, fn = "activate", u.activate
	case PhaseChecking:
		name, fn = "check", u.check
	case PhaseCommitting:
		name, fn = "commit", u.commit
	case PhaseRollingBack:
		name, fn = "rollback", func(ctx context.Context, st State) outcome {
			if err := u.rollback(ctx, st); err != nil {
				return outcome{err: err}
			}
			return outcome{ev: EvRolledBack{}}
		}
	default: // resting
		switch {
		case len(st.Retiring) > 0:
			name, fn = "retire", u.retire
		case r.gcAt != st.Transitions:
			r.gcAt = st.Transitions
			name, fn = "sweep", u.sweep
		default:
			return
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	j := &job{name: name, cancel: cancel, done: make(chan outcome, 1)}
	r.work = j
	go func() { j.done <- fn(wctx, st) }()
}

// finish applies a side effect's outcome.
func (r *runner) finish(name string, o outcome) error {
	if errors.Is(o.err, errCrashed) {
		return errCrashed
	}
	if o.err != nil && !errors.Is(o.err, context.Canceled) {
		r.u.log.Warn("fleet: step ended without an outcome", "step", name, "err", o.err)
	}
	if o.ev == nil {
		return nil
	}
	if err := r.u.apply(o.ev); err != nil {
		return err
	}
	r.report = true
	if _, ok := o.ev.(EvRolledBack); ok {
		for _, w := range r.waiters {
			w <- nil
		}
		r.waiters = nil
	}
	return nil
}

// subscribe subscribes to the desired topics not yet subscribed; a
// failure is retried when the link next comes up.
func (r *runner) subscribe() {
	u := r.u
	want := []string{u.topics.fleetDesired, u.topics.deviceDesired}
	if u.opts.RootKey != nil {
		// The key list first: a broker delivers retained messages in
		// subscription order, so the keys are in force before the
		// manifests they sign are evaluated.
		want = append([]string{u.topics.keys}, want...)
	}
	for _, topic := range want {
		if r.subscribed[topic] {
			continue
		}
		if err := u.opts.Link.Subscribe(topic, func(p []byte) { u.deliver(topic, p) }); err != nil {
			u.log.Warn("fleet: subscribe failed; retrying when the link is up", "topic", topic, "err", err)
			continue
		}
		r.subscribed[topic] = true
	}
}

// Stored desired payloads start with this byte, so that an empty payload
// (an operator clearing a retained message) is stored as something.
const desiredPrefix = 'p'

// restoreDesired loads the desired payloads last received, so a device
// that went offline mid-update still knows what it was told.
func (r *runner) restoreDesired() error {
	u := r.u
	r.desired = map[string][]byte{}
	for topic, key := range u.topics.desiredKeys() {
		v, err := u.opts.Store.Get(key)
		if err != nil {
			return fmt.Errorf("fleet: read %s: %w", key, err)
		}
		if len(v) > 0 && v[0] == desiredPrefix {
			r.desired[topic] = v[1:]
			r.evalPending = true
		}
	}
	return nil
}

// takeInputs reads what the link delivered.
func (r *runner) takeInputs(ctx context.Context) error {
	u := r.u
	u.mu.Lock()
	inbox, fresh := u.inbox, u.inboxNew
	u.inbox, u.inboxNew = map[string][]byte{}, false
	online, linkNew := u.online, u.linkNew
	u.linkNew = false
	u.status.Online = online
	u.mu.Unlock()

	if linkNew && online {
		r.report = true // a device that was offline reports when it is back
		r.subscribe()
	}
	if !fresh {
		return nil
	}
	changed := false
	if payload, ok := inbox[u.topics.keys]; ok {
		delete(inbox, u.topics.keys)
		keysChanged, err := r.takeKeyList(payload)
		if err != nil {
			return err
		}
		if keysChanged {
			r.evalPending = true // what was signed by an unknown key may verify now, and the other way round
		}
	}
	keys := u.topics.desiredKeys()
	for topic, payload := range inbox {
		if old, ok := r.desired[topic]; ok && bytes.Equal(old, payload) {
			continue // the retained message again, after a reconnect
		}
		if err := u.opts.Store.Put(keys[topic], append([]byte{desiredPrefix}, payload...)); err != nil {
			return fmt.Errorf("fleet: store desired payload: %w", err)
		}
		r.desired[topic] = payload
		changed = true
	}
	if !changed {
		return nil
	}
	r.evalPending = true
	if u.st.Phase.preSwitch() {
		// A newer manifest replaces a target that is not yet switched to.
		r.evalPending = false
		return r.evaluate(ctx)
	}
	return nil
}

// manualRollback starts an operator's rollback.
func (r *runner) manualRollback(req rollbackRequest) error {
	u := r.u
	if !u.st.Phase.Resting() {
		req.reply <- fmt.Errorf("rollback to version %d: %w (phase %s)", req.to, ErrBusy, u.st.Phase)
		return nil
	}
	if _, err := u.m.next(u.st, EvManualRollback{To: req.to}); err != nil {
		req.reply <- err
		return nil
	}
	// A retirement or sweep in flight finishes first: it may be deleting
	// files, and the rollback target's files are in Kept, which it spares.
	if err := r.cancelWork(); err != nil {
		return err
	}
	if err := u.apply(EvManualRollback{To: req.to}); err != nil {
		req.reply <- err
		return err
	}
	r.report = true
	r.waiters = append(r.waiters, req.reply)
	return nil
}

// publish sends the report when one is due; a failure leaves it due.
func (r *runner) publish() {
	if !r.report {
		return
	}
	u := r.u
	payload, err := u.reportPayload()
	if err != nil {
		u.log.Error("fleet: encode report", "err", err)
		r.report = false
		return
	}
	if err := u.opts.Link.Publish(u.topics.reported, payload, true); err != nil {
		u.log.Debug("fleet: report not published; will retry when the link is up", "err", err)
		return
	}
	r.report = false
}
