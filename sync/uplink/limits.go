package uplink

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// window is one daily schedule window in minutes after local midnight;
// end may be 1440 (24:00). A window whose end is before its start runs
// past midnight; start == end is the whole day.
type window struct{ start, end int }

// schedule is the daily windows in which records may go out; none means
// any time.
type schedule []window

// parseSchedule reads windows like "01:00-05:00" or "22:00-06:00".
func parseSchedule(specs []string) (schedule, error) {
	var s schedule
	for _, spec := range specs {
		a, b, ok := strings.Cut(spec, "-")
		if !ok {
			return nil, fmt.Errorf("schedule window %q: want HH:MM-HH:MM", spec)
		}
		start, err := parseClock(a, false)
		if err != nil {
			return nil, fmt.Errorf("schedule window %q: %w", spec, err)
		}
		end, err := parseClock(b, true)
		if err != nil {
			return nil, fmt.Errorf("schedule window %q: %w", spec, err)
		}
		s = append(s, window{start, end})
	}
	return s, nil
}

// parseClock reads HH:MM as minutes after midnight; 24:00 only as an end.
func parseClock(v string, end bool) (int, error) {
	h, m, ok := strings.Cut(v, ":")
	if !ok || len(h) != 2 || len(m) != 2 {
		return 0, fmt.Errorf("%q is not HH:MM", v)
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || hh < 0 || mm < 0 || mm > 59 || hh > 24 || (hh == 24 && (mm != 0 || !end)) {
		return 0, fmt.Errorf("%q is not a time of day (00:00 to 23:59, or 24:00 as an end)", v)
	}
	return hh*60 + mm, nil
}

// minuteOfDay returns how far into its local day t is, in minutes.
func minuteOfDay(t time.Time) int { return t.Hour()*60 + t.Minute() }

// allowed reports whether records may go out at t (in t's location).
func (s schedule) allowed(t time.Time) bool {
	if len(s) == 0 {
		return true
	}
	m := minuteOfDay(t)
	for _, w := range s {
		switch {
		case w.start == w.end:
			return true
		case w.start < w.end:
			if m >= w.start && m < w.end {
				return true
			}
		default: // past midnight
			if m >= w.start || m < w.end {
				return true
			}
		}
	}
	return false
}

// nextOpen returns the first time after t at which a window opens, by
// the wall clock of t's location (a window at 02:30 on a day that skips
// 02:00-03:00 opens when time.Date puts it). With no windows it is t.
func (s schedule) nextOpen(t time.Time) time.Time {
	if s.allowed(t) {
		return t
	}
	var best time.Time
	for day := 0; day <= 2; day++ {
		for _, w := range s {
			at := time.Date(t.Year(), t.Month(), t.Day()+day, w.start/60, w.start%60, 0, 0, t.Location())
			if at.After(t) && (best.IsZero() || at.Before(best)) {
				best = at
			}
		}
		if !best.IsZero() {
			return best
		}
	}
	return t.Add(time.Minute) // unreachable with valid windows
}

// nextMidnight returns the start of the local day after t's.
func nextMidnight(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, t.Location())
}

// bucket is a token bucket over bytes sent. It may go into debt by one
// batch: a batch goes out when the bucket is not in debt, and its bytes
// are then taken, so the rate holds on average and no batch needs more
// tokens than the bucket can hold.
type bucket struct {
	rate   float64 // bytes per second; 0 is no cap
	burst  float64
	tokens float64
	last   time.Time
}

// newBucket returns a bucket of rate bytes/s holding up to one second's
// worth.
func newBucket(rate int64) *bucket {
	return &bucket{rate: float64(rate), burst: float64(rate), tokens: float64(rate)}
}

func (b *bucket) refill(now time.Time) {
	if b.last.IsZero() || now.Before(b.last) { // a clock stepped back refills nothing
		b.last = now
		return
	}
	b.tokens = math.Min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
}

// delay returns how long to wait before the next batch may go out.
func (b *bucket) delay(now time.Time) time.Duration {
	if b.rate <= 0 {
		return 0
	}
	b.refill(now)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(math.Ceil(-b.tokens / b.rate * float64(time.Second)))
}

// take accounts for n bytes sent at now.
func (b *bucket) take(now time.Time, n int) {
	if b.rate <= 0 {
		return
	}
	b.refill(now)
	b.tokens -= float64(n)
}

// budgetKey is the Settings key of the bytes sent today.
const budgetKey = "uplink/bytes_today"

// budget counts the bytes sent per local day and caps them.
type budget struct {
	limit    int64 // 0 is no cap
	settings Settings
	day      string // YYYY-MM-DD of the count, local
	used     int64
	// full is set when a batch did not fit in what is left today: no
	// batch goes out before midnight, and none is built again meanwhile.
	full    bool
	saveErr error // the last persistence error, reported once
}

type budgetRecord struct {
	Day   string `json:"day"`
	Bytes int64  `json:"bytes"`
}

func dayOf(t time.Time) string { return t.Format("2006-01-02") }

// load reads today's count from settings; anything unreadable is none.
func (b *budget) load(now time.Time) {
	b.day, b.used = dayOf(now), 0
	if b.settings == nil {
		return
	}
	raw, err := b.settings.Setting(budgetKey)
	if err != nil {
		return
	}
	var r budgetRecord
	if json.Unmarshal(raw, &r) == nil && r.Day == b.day && r.Bytes > 0 {
		b.used = r.Bytes
	}
}

// roll starts a new count when the local day has changed.
func (b *budget) roll(now time.Time) {
	if d := dayOf(now); d != b.day {
		b.day, b.used, b.full = d, 0, false
	}
}

// exhausted reports whether no byte may go out before midnight.
func (b *budget) exhausted(now time.Time) bool {
	b.roll(now)
	return b.limit > 0 && (b.used >= b.limit || b.full)
}

// remaining returns the bytes left today (MaxInt64 without a cap).
func (b *budget) remaining(now time.Time) int64 {
	b.roll(now)
	if b.limit <= 0 {
		return math.MaxInt64
	}
	return max(b.limit-b.used, 0)
}

// fits reports whether a batch of n bytes holding records records may go
// out today; when it may not, the day is done (exhausted until
// midnight). A batch of one record larger than the whole budget goes out
// as the first of a day, else it could never leave.
func (b *budget) fits(now time.Time, n int, records int) bool {
	b.roll(now)
	if b.limit <= 0 || b.used+int64(n) <= b.limit || (b.used == 0 && records == 1) {
		return true
	}
	b.full = true
	return false
}

// add counts n bytes sent at now and, with a cap, persists the count
// before the bytes go out (persist before the side effect): a crash
// never forgets bytes it sent.
func (b *budget) add(now time.Time, n int) error {
	b.roll(now)
	b.used += int64(n)
	if b.limit <= 0 {
		return nil
	}
	return b.save()
}

func (b *budget) save() error {
	if b.settings == nil {
		return nil
	}
	raw, _ := json.Marshal(budgetRecord{Day: b.day, Bytes: b.used})
	return b.settings.SetSetting(budgetKey, raw)
}

// backoff doubles the pause between dial attempts from min to max, with
// jitter (each pause is a random point in the upper half of the step) so
// that a fleet that lost its link at one moment does not retry at one
// moment.
type backoff struct {
	min, max time.Duration
	cur      time.Duration
	rand     func() float64
}

// next returns the pause before the next attempt.
func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(b.cur*2, b.max)
	}
	return b.cur/2 + time.Duration(b.rand()*float64(b.cur/2))
}

// reset starts again from min, after a connection that made progress.
func (b *backoff) reset() { b.cur = 0 }
