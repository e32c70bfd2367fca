package uplink

// Test helpers shared by the package's internal tests and its external
// tests (package uplink_test): the real store behind the Outbox
// interface, and a clock the tests move by hand.

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ember-edge/ember/daemon/store"
)

// StoreOutbox adapts *store.Store to Outbox, as the daemon does.
type StoreOutbox struct{ *store.Store }

func (s StoreOutbox) PendingRecords(p, max int) ([]Record, error) {
	recs, err := s.Store.PendingRecords(p, max)
	out := make([]Record, len(recs))
	for i, r := range recs {
		out[i] = Record(r)
	}
	return out, err
}

func (s StoreOutbox) SyncBacklog() (Backlog, error) {
	b, err := s.Store.SyncBacklog()
	return Backlog(b), err
}

// OpenTestStore opens a real store in a temp dir, closed (after a
// consistency check) when the test ends.
func OpenTestStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "ember.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Check(); err != nil {
			t.Errorf("store check: %v", err)
		}
		st.Close()
	})
	return st
}

// AppendRecords appends records concurrently (so group commits carry
// many) and returns them with their sequence numbers.
func AppendRecords(t testing.TB, st *store.Store, recs []store.Record) []store.Record {
	t.Helper()
	out := make([]store.Record, len(recs))
	var wg sync.WaitGroup
	errs := make(chan error, len(recs))
	sem := make(chan struct{}, 256)
	for i, r := range recs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			got, err := st.Append(context.Background(), r, nil, time.Now())
			if err != nil {
				errs <- err
				return
			}
			out[i] = got
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return out
}

// AppendInOrder appends records one at a time, so their sequence
// numbers follow the slice.
func AppendInOrder(t testing.TB, st *store.Store, recs []store.Record) []store.Record {
	t.Helper()
	out := make([]store.Record, len(recs))
	for i, r := range recs {
		got, err := st.Append(context.Background(), r, nil, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		out[i] = got
	}
	return out
}

// FakeClock is a Clock that moves only when told. Timers fire when the
// clock reaches them.
type FakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  map[*fakeTimer]struct{}
	created int
	changed chan struct{} // closed and replaced whenever a timer is made
}

// NewFakeClock returns a clock at now.
func NewFakeClock(now time.Time) *FakeClock {
	return &FakeClock{now: now, timers: map[*fakeTimer]struct{}{}, changed: make(chan struct{})}
}

type fakeTimer struct {
	clk *FakeClock
	at  time.Time
	c   chan time.Time
}

func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *FakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clk: c, at: c.now.Add(d), c: make(chan time.Time, 1)}
	c.created++
	if d <= 0 {
		t.c <- c.now
	} else {
		c.timers[t] = struct{}{}
	}
	close(c.changed)
	c.changed = make(chan struct{})
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	_, pending := t.clk.timers[t]
	delete(t.clk.timers, t)
	return pending
}

// TimersCreated counts the timers made so far: a loop that spins makes
// them without end.
func (c *FakeClock) TimersCreated() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.created
}

// Set moves the clock to now, firing the timers due by then.
func (c *FakeClock) Set(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = now
	for t := range c.timers {
		if !t.at.After(now) {
			delete(c.timers, t)
			t.c <- now
		}
	}
}

// Advance moves the clock on by d.
func (c *FakeClock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// NextTimer waits (in real time, up to wait) until a timer is pending
// and returns the earliest one's deadline; ok is false if none came.
func (c *FakeClock) NextTimer(wait time.Duration) (at time.Time, ok bool) {
	deadline := time.After(wait)
	for {
		c.mu.Lock()
		first := time.Time{}
		for t := range c.timers {
			if first.IsZero() || t.at.Before(first) {
				first = t.at
			}
		}
		changed := c.changed
		c.mu.Unlock()
		if !first.IsZero() {
			return first, true
		}
		select {
		case <-changed:
		case <-deadline:
			return time.Time{}, false
		}
	}
}

// WaitNewTimer waits (in real time, up to wait) until a timer is made
// after the count created; it returns the new count.
func (c *FakeClock) WaitNewTimer(created int, wait time.Duration) (int, bool) {
	deadline := time.After(wait)
	for {
		c.mu.Lock()
		n, changed := c.created, c.changed
		c.mu.Unlock()
		if n > created {
			return n, true
		}
		select {
		case <-changed:
		case <-deadline:
			return n, false
		}
	}
}

// setDial replaces how u connects (for fakes).
func (u *Uplink) setDial(d dialFunc) { u.dial = d }
