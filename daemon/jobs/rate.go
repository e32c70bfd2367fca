package jobs

import "time"

// tokenBucket limits how often a pipeline's jobs start: perSecond on
// average, up to burst at once.
type tokenBucket struct {
	perSecond float64
	burst     float64
	tokens    float64
	last      time.Time
}

func newTokenBucket(perSecond float64, burst int, now time.Time) *tokenBucket {
	b := float64(max(burst, 1))
	return &tokenBucket{perSecond: perSecond, burst: b, tokens: b, last: now}
}

func (b *tokenBucket) refill(now time.Time) {
	if now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.perSecond)
		b.last = now
	}
}

// allow reports whether a job may start now.
func (b *tokenBucket) allow(now time.Time) bool {
	b.refill(now)
	return b.tokens >= 1
}

// take uses one token.
func (b *tokenBucket) take(now time.Time) {
	b.refill(now)
	b.tokens--
}

// next is when the next token is due.
func (b *tokenBucket) next(now time.Time) time.Time {
	b.refill(now)
	if b.tokens >= 1 {
		return now
	}
	return now.Add(time.Duration((1 - b.tokens) / b.perSecond * float64(time.Second)))
}
