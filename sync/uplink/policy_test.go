package uplink

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/ember-edge/ember/daemon/store"
)

// noisy returns records whose data gzip cannot shrink much, so wire
// sizes are predictable.
func noisy(n, size int) []store.Record {
	out := make([]store.Record, n)
	x := uint32(12345)
	for i := range out {
		b := make([]byte, size)
		for j := range b {
			x = x*1664525 + 1013904223
			b[j] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/"[x>>26]
		}
		out[i] = rec(store.KindTelemetry, 4, "", fmt.Sprintf(`{"i":%d,"blob":%q}`, i, b))
	}
	return out
}

// stepClock moves clk to each timer the uplink sets until cond holds or
// the clock passes until.
func stepClock(t *testing.T, clk *FakeClock, until time.Time, cond func() bool) {
	t.Helper()
	for !cond() {
		at, ok := clk.NextTimer(10 * time.Second)
		if !ok {
			t.Fatal("the uplink set no timer")
		}
		if at.After(until) {
			t.Fatalf("condition not met by %v", until)
		}
		created := clk.TimersCreated()
		clk.Set(at)
		// The uplink makes a new timer once it has handled the one that
		// fired (unless the timer had already been replaced).
		clk.WaitNewTimer(created, 200*time.Millisecond)
	}
}

func TestDailyBudget(t *testing.T) {
	start := time.Date(2026, 3, 1, 23, 30, 0, 0, plant)
	clk := NewFakeClock(start)
	c := newFakeConn(2, true)
	r := newFakeRig(t, Options{BatchRecords: 1, Window: 2, DailyBudget: 5000, Clock: clk, Location: plant},
		func(int) (*fakeConn, error) { return c, nil })
	appendInOrder(t, r.st, noisy(40, 600)) // ~700 bytes on the wire each
	r.run(t)

	waitFor(t, "budget exhausted", func() bool { return r.u.Status().State == StateBudgetExhausted })
	st := r.u.Status()
	if st.BytesToday > 5000 || st.BytesToday < 5000-1000 {
		t.Fatalf("bytes today %d with a budget of 5000 and ~700-byte batches", st.BytesToday)
	}
	var wire int
	for _, p := range c.published() {
		wire += publishSize(p.topic, p.payload)
	}
	if int64(wire) != st.BytesToday {
		t.Errorf("published %d bytes, counted %d", wire, st.BytesToday)
	}
	sentBefore := len(c.published())
	// Persisted before sending: a restart today would not send more.
	raw, err := r.st.Setting(budgetKey)
	if err != nil {
		t.Fatal(err)
	}
	var saved budgetRecord
	if err := json.Unmarshal(raw, &saved); err != nil || saved.Bytes != st.BytesToday || saved.Day != "2026-03-01" {
		t.Fatalf("persisted %s (%v), want %d bytes on 2026-03-01", raw, err, st.BytesToday)
	}
	// Polls before midnight send nothing.
	clk.Set(start.Add(20 * time.Minute))
	time.Sleep(20 * time.Millisecond)
	if n := len(c.published()); n != sentBefore {
		t.Fatalf("%d batches sent after the budget was spent", n-sentBefore)
	}
	// Local midnight: a new day's budget.
	stepClock(t, clk, start.Add(time.Hour), func() bool { return len(c.published()) > sentBefore })
	waitFor(t, "the new day's budget spent", func() bool { return r.u.Status().State == StateBudgetExhausted })
	if st := r.u.Status(); st.BytesToday > 5000 || st.BytesToday < 4000 {
		t.Errorf("after midnight: bytes today %d", st.BytesToday)
	}
}

func TestScheduleWindowHoldsUploads(t *testing.T) {
	start := time.Date(2026, 3, 1, 3, 0, 0, 0, plant) // outside 22:00-02:00
	clk := NewFakeClock(start)
	c := newFakeConn(4, true)
	r := newFakeRig(t, Options{Schedule: []string{"22:00-02:00"}, Clock: clk, Location: plant, Poll: time.Hour},
		func(int) (*fakeConn, error) { return c, nil })
	appendInOrder(t, r.st, recs(10, store.KindResult, 2))
	r.run(t)

	waitFor(t, "outside the schedule", func() bool { return r.u.Status().State == StateOutsideSchedule })
	if !r.u.Link().Up() {
		t.Error("the connection is kept outside the schedule (for the fleet link)")
	}
	r.u.Trigger() // policy still applies
	time.Sleep(20 * time.Millisecond)
	if n := len(c.published()); n != 0 {
		t.Fatalf("%d batches sent outside the schedule", n)
	}
	// The window opens at 22:00 the same day.
	stepClock(t, clk, time.Date(2026, 3, 1, 22, 0, 0, 0, plant), func() bool { return len(c.published()) > 0 })
	if now := clk.Now(); now.Before(time.Date(2026, 3, 1, 22, 0, 0, 0, plant)) {
		t.Fatalf("sent at %v, before the window", now)
	}
	r.waitDrained(t)
	// Past midnight, inside the wrapped window: new records go out.
	clk.Set(time.Date(2026, 3, 2, 1, 30, 0, 0, plant))
	appendInOrder(t, r.st, recs(3, store.KindResult, 2))
	r.u.Poke()
	waitFor(t, "records sent at 01:30", func() bool { return r.u.Status().RecordsAcked == 13 })
	// 02:00 closes it again.
	clk.Set(time.Date(2026, 3, 2, 2, 0, 0, 0, plant))
	appendInOrder(t, r.st, recs(3, store.KindResult, 2))
	r.u.Poke()
	waitFor(t, "outside the schedule again", func() bool { return r.u.Status().State == StateOutsideSchedule })
	if n := r.u.Status().RecordsAcked; n != 13 {
		t.Errorf("%d records acknowledged; the three after 02:00 went out", n)
	}
}

func TestBandwidthCap(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, plant)
	clk := NewFakeClock(start)
	c := newFakeConn(8, true)
	const rate = 4000
	r := newFakeRig(t, Options{BatchRecords: 1, Window: 8, Bandwidth: rate, Clock: clk, Location: plant},
		func(int) (*fakeConn, error) { return c, nil })
	appendInOrder(t, r.st, noisy(60, 600))
	r.run(t)

	span := 10 * time.Second
	stepClock(t, clk, start.Add(span+time.Minute), func() bool { return !clk.Now().Before(start.Add(span)) })
	elapsed := clk.Now().Sub(start).Seconds()
	var wire int
	maxBatch := 0
	for _, p := range c.published() {
		n := publishSize(p.topic, p.payload)
		wire += n
		maxBatch = max(maxBatch, n)
	}
	// The bucket starts full (one second) and may owe one batch.
	if limit := rate*elapsed + rate + float64(maxBatch); float64(wire) > limit {
		t.Errorf("%d bytes in %.1fs at %d B/s (limit %.0f)", wire, elapsed, rate, limit)
	}
	if floor := rate*elapsed - float64(2*maxBatch); float64(wire) < floor {
		t.Errorf("%d bytes in %.1fs at %d B/s: the cap is not used (floor %.0f)", wire, elapsed, rate, floor)
	}
}
