package fleet

import (
	"context"
	"math/rand/v2"
	"time"
)

// Clock is the time source of the rate limiter, the schedule windows and
// the retry backoff, so tests can drive them without sleeping.
type Clock interface {
	Now() time.Time
	// After sends the time on the channel once d has passed.
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// SystemClock is the real clock.
var SystemClock Clock = systemClock{}

// sleep waits d on clock, or until ctx is done.
func sleep(ctx context.Context, clock Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-clock.After(d):
		return nil
	}
}

// Window says when downloads may run, for a device whose link is metered
// or shared: only at night, only in a maintenance slot.
type Window interface {
	// Allowed reports whether transfers may run at now.
	Allowed(now time.Time) bool
	// Next returns the next time after now at which transfers may run; it
	// is called only when Allowed(now) is false.
	Next(now time.Time) time.Time
}

// Always is the window that is always open.
type Always struct{}

func (Always) Allowed(time.Time) bool       { return true }
func (Always) Next(now time.Time) time.Time { return now }

// Daily is a window open every day from Start to End, both offsets from
// midnight in Location (local time when nil). A window whose End is
// before its Start runs past midnight (22:00-06:00). Start == End means
// always open.
type Daily struct {
	Start, End time.Duration
	Location   *time.Location
}

func (w Daily) loc() *time.Location {
	if w.Location == nil {
		return time.Local
	}
	return w.Location
}

// offset returns how far into its day now is, and that day's midnight.
func (w Daily) offset(now time.Time) (time.Duration, time.Time) {
	t := now.In(w.loc())
	midnight := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, w.loc())
	return t.Sub(midnight), midnight
}

// Allowed reports whether now falls inside the window.
func (w Daily) Allowed(now time.Time) bool {
	if w.Start == w.End {
		return true
	}
	off, _ := w.offset(now)
	if w.Start < w.End {
		return off >= w.Start && off < w.End
	}
	return off >= w.Start || off < w.End
}

// Next returns when the window next opens.
func (w Daily) Next(now time.Time) time.Time {
	if w.Allowed(now) {
		return now
	}
	off, midnight := w.offset(now)
	if off < w.Start {
		return midnight.Add(w.Start)
	}
	next := midnight.AddDate(0, 0, 1)
	return next.Add(w.Start)
}

// Limiter is a token bucket over bytes. Reserve is pure given its inputs,
// so tests assert on its decisions with a fake clock.
type Limiter struct {
	rate   float64 // bytes per second; ≤ 0 is unlimited
	burst  float64
	tokens float64
	last   time.Time
}

// NewLimiter returns a limiter of bytesPerSecond (0 is unlimited) that
// lets burst bytes through at once; burst ≤ 0 means a tenth of a second's
// worth, at least 4 KiB.
func NewLimiter(bytesPerSecond, burst int64) *Limiter {
	if burst <= 0 {
		burst = max(bytesPerSecond/10, 4<<10)
	}
	return &Limiter{rate: float64(bytesPerSecond), burst: float64(burst), tokens: float64(burst)}
}

// Burst returns the most bytes one Reserve should ask for.
func (l *Limiter) Burst() int { return int(l.burst) }

// Reserve accounts for n bytes sent at now and returns how long the sender
// must wait before sending more so the average stays at the rate. The
// bucket may go into debt; the wait pays it back.
func (l *Limiter) Reserve(now time.Time, n int) time.Duration {
	if l.rate <= 0 {
		return 0
	}
	if !l.last.IsZero() && now.After(l.last) {
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	if l.last.IsZero() || now.After(l.last) {
		l.last = now
	}
	l.tokens -= float64(n)
	if l.tokens >= 0 {
		return 0
	}
	return time.Duration(-l.tokens / l.rate * float64(time.Second))
}

// backoff doubles a delay from min to max, with jitter so that a fleet
// that lost its link at one moment does not retry at one moment.
type backoff struct {
	min, max time.Duration
	cur      time.Duration
	rand     func() float64
}

func newBackoff(lo, hi time.Duration) *backoff {
	return &backoff{min: lo, max: hi, rand: rand.Float64}
}

// next returns the delay before the next retry: the doubled step, less a
// random part of up to half of it.
func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(b.cur*2, b.max)
	}
	return b.cur - time.Duration(b.rand()*float64(b.cur)/2)
}

// reset starts over from min, after progress.
func (b *backoff) reset() { b.cur = 0 }
