package uplink

import (
	"errors"
	"math"
	"testing"
	"time"
	_ "time/tzdata"
)

var plant = time.FixedZone("plant", 2*3600)

func at(day int, hh, mm int) time.Time { return time.Date(2026, 3, day, hh, mm, 0, 0, plant) }

func TestSchedule(t *testing.T) {
	cases := []struct {
		name    string
		windows []string
		now     time.Time
		allowed bool
		next    time.Time // when not allowed
	}{
		{"no windows: always", nil, at(1, 12, 0), true, time.Time{}},
		{"inside", []string{"01:00-05:00"}, at(1, 3, 0), true, time.Time{}},
		{"at the start", []string{"01:00-05:00"}, at(1, 1, 0), true, time.Time{}},
		{"at the end: closed", []string{"01:00-05:00"}, at(1, 5, 0), false, at(2, 1, 0)},
		{"before: opens today", []string{"01:00-05:00"}, at(1, 0, 30), false, at(1, 1, 0)},
		{"after: opens tomorrow", []string{"01:00-05:00"}, at(1, 23, 0), false, at(2, 1, 0)},
		{"wraps midnight: late evening", []string{"22:00-02:00"}, at(1, 23, 30), true, time.Time{}},
		{"wraps midnight: small hours", []string{"22:00-02:00"}, at(2, 1, 59), true, time.Time{}},
		{"wraps midnight: closed at 02:00", []string{"22:00-02:00"}, at(2, 2, 0), false, at(2, 22, 0)},
		{"wraps midnight: midday", []string{"22:00-02:00"}, at(2, 12, 0), false, at(2, 22, 0)},
		{"until 24:00", []string{"20:00-24:00"}, at(1, 23, 59), true, time.Time{}},
		{"until 24:00, midnight closed", []string{"20:00-24:00"}, at(2, 0, 0), false, at(2, 20, 0)},
		{"whole day", []string{"00:00-24:00"}, at(1, 0, 0), true, time.Time{}},
		{"equal ends: whole day", []string{"05:00-05:00"}, at(1, 17, 0), true, time.Time{}},
		{"two windows: between", []string{"01:00-02:00", "13:00-14:00"}, at(1, 3, 0), false, at(1, 13, 0)},
		{"two windows: after both", []string{"13:00-14:00", "01:00-02:00"}, at(1, 15, 0), false, at(2, 1, 0)},
		{"two windows: in the second", []string{"01:00-02:00", "13:00-14:00"}, at(1, 13, 30), true, time.Time{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := parseSchedule(c.windows)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.allowed(c.now); got != c.allowed {
				t.Fatalf("allowed(%v) = %v", c.now, got)
			}
			if !c.allowed {
				if got := s.nextOpen(c.now); !got.Equal(c.next) {
					t.Errorf("nextOpen(%v) = %v, want %v", c.now, got, c.next)
				}
			}
		})
	}
}

func TestScheduleAcrossDST(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin") // time/tzdata is linked in
	if err != nil {
		t.Fatal(err)
	}
	s, _ := parseSchedule([]string{"01:00-05:00"})
	// 2026-03-29: clocks go from 02:00 to 03:00.
	before := time.Date(2026, 3, 28, 23, 0, 0, 0, berlin)
	if got, want := s.nextOpen(before), time.Date(2026, 3, 29, 1, 0, 0, 0, berlin); !got.Equal(want) {
		t.Errorf("nextOpen = %v, want %v", got, want)
	}
	if !s.allowed(time.Date(2026, 3, 29, 3, 30, 0, 0, berlin)) {
		t.Error("03:30 on the short night is inside 01:00-05:00")
	}
}

func TestParseScheduleRefuses(t *testing.T) {
	for _, bad := range []string{"1:00-05:00", "01:00", "24:00-05:00", "01:00-24:30", "01:60-02:00", "aa:bb-cc:dd", "01:00-25:00"} {
		if _, err := parseSchedule([]string{bad}); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestBucket(t *testing.T) {
	t0 := at(1, 12, 0)
	b := newBucket(1000) // 1000 B/s, one second of burst
	if d := b.delay(t0); d != 0 {
		t.Fatalf("a full bucket delays %v", d)
	}
	b.take(t0, 800)
	if d := b.delay(t0); d != 0 {
		t.Fatalf("200 tokens left, delay %v", d)
	}
	b.take(t0, 700) // 500 in debt: half a second
	if d := b.delay(t0); d != 500*time.Millisecond {
		t.Fatalf("500 bytes of debt at 1000 B/s: delay %v", d)
	}
	if d := b.delay(t0.Add(499 * time.Millisecond)); d <= 0 || d > 2*time.Millisecond {
		t.Fatalf("1ms of debt left: delay %v", d)
	}
	if d := b.delay(t0.Add(500 * time.Millisecond)); d != 0 {
		t.Fatalf("debt paid: delay %v", d)
	}
	// A long pause refills only one second's worth.
	b.delay(t0.Add(time.Hour))
	b.take(t0.Add(time.Hour), 2000)
	if d := b.delay(t0.Add(time.Hour)); d != time.Second {
		t.Fatalf("1000 bytes of debt after a full bucket: delay %v", d)
	}
	// A clock stepping back refills nothing and does not panic.
	if d := b.delay(t0); d <= 0 {
		t.Fatalf("clock stepped back: delay %v", d)
	}
	if d := newBucket(0).delay(t0); d != 0 {
		t.Fatal("no cap delays")
	}
}

// mapSettings is an in-memory Settings.
type mapSettings struct {
	m       map[string][]byte
	failGet bool
}

func (s *mapSettings) Setting(k string) ([]byte, error) {
	if v, ok := s.m[k]; ok && !s.failGet {
		return v, nil
	}
	return nil, errors.New("not found")
}

func (s *mapSettings) SetSetting(k string, v []byte) error { s.m[k] = v; return nil }

func TestBudget(t *testing.T) {
	set := &mapSettings{m: map[string][]byte{}}
	b := budget{limit: 1000, settings: set}
	b.load(at(1, 22, 0))
	if !b.fits(at(1, 22, 0), 600, 3) || b.remaining(at(1, 22, 0)) != 1000 {
		t.Fatal("fresh budget")
	}
	b.add(at(1, 22, 0), 600)
	if b.fits(at(1, 22, 1), 500, 3) {
		t.Fatal("600+500 fits in 1000")
	}
	if b.fits(at(1, 22, 1), 500, 1) {
		t.Fatal("a single record over the rest fits, though the day's bytes are not untouched")
	}
	if !b.exhausted(at(1, 22, 1)) {
		t.Fatal("a batch that did not fit leaves the day open")
	}
	b.add(at(1, 22, 2), 400)
	if !b.exhausted(at(1, 23, 59)) {
		t.Fatal("1000 of 1000 is not exhausted")
	}

	// Persisted: a restart the same day remembers; the next day does not.
	again := budget{limit: 1000, settings: set}
	again.load(at(1, 23, 0))
	if again.used != 1000 {
		t.Fatalf("after a restart the same day: used %d, want 1000", again.used)
	}
	if again.exhausted(at(2, 0, 0)) || again.remaining(at(2, 0, 0)) != 1000 {
		t.Fatal("the budget did not reset at local midnight")
	}
	next := budget{limit: 1000, settings: set}
	next.load(at(2, 0, 1))
	if next.used != 0 {
		t.Fatalf("a restart the next day: used %d", next.used)
	}
	// Midnight is local midnight, not UTC's.
	if got := nextMidnight(at(1, 22, 0)); !got.Equal(at(2, 0, 0)) {
		t.Fatalf("nextMidnight = %v", got)
	}
	// A record bigger than the whole budget goes first thing in a day.
	huge := budget{limit: 1000}
	huge.load(at(3, 1, 0))
	if !huge.fits(at(3, 1, 0), 5000, 1) {
		t.Fatal("an oversized single record could never leave")
	}
	// An unreadable setting is "none yet".
	set.failGet = true
	r := budget{limit: 1000, settings: set}
	r.load(at(2, 0, 1))
	if r.used != 0 {
		t.Fatal("unreadable setting not taken as none")
	}
	if (&budget{}).remaining(at(1, 0, 0)) != math.MaxInt64 {
		t.Fatal("no cap has a remainder")
	}
}

func TestBackoff(t *testing.T) {
	for _, c := range []struct {
		name string
		rnd  float64
		want []time.Duration
	}{
		{"no jitter drawn", 0, []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}},
		{"most jitter", 0.999999, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := backoff{min: time.Second, max: 8 * time.Second, rand: func() float64 { return c.rnd }}
			for i, w := range c.want {
				got := b.next()
				if d := got - w; d < -time.Millisecond || d > time.Millisecond {
					t.Errorf("step %d: %v, want %v", i, got, w)
				}
			}
			b.reset()
			if got := b.next(); got > time.Second {
				t.Errorf("after reset: %v", got)
			}
		})
	}
}
