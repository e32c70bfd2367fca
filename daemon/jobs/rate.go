package jobs

import (
	"sync"
	"time"

	"github.com/ember-edge/ember/daemon/pipeline"
)

// rateLimits holds a token bucket per rate-limited pipeline. The buckets
// belong to one snapshot of the pipelines: when the set changes, they
// start afresh with the new definitions.
type rateLimits struct {
	pipes *pipeline.Set

	mu      sync.Mutex
	snap    *pipeline.Snapshot
	buckets map[string]*tokenBucket
}

func newRateLimits(pipes *pipeline.Set) *rateLimits {
	return &rateLimits{pipes: pipes, buckets: map[string]*tokenBucket{}}
}

// bucket returns name's bucket, nil when the pipeline has no rate limit.
// It must be called with mu held.
func (r *rateLimits) bucket(name string, now time.Time) *tokenBucket {
	if snap := r.pipes.Snapshot(); snap != r.snap {
		r.snap = snap
		clear(r.buckets)
	}
	p, ok := r.snap.Get(name)
	if !ok || p.Config().RateLimit.PerSecond <= 0 {
		return nil
	}
	b, ok := r.buckets[name]
	if !ok {
		rl := p.Config().RateLimit
		b = newTokenBucket(rl.PerSecond, rl.Burst, now)
		r.buckets[name] = b
	}
	return b
}

// limited reports whether name's jobs must wait for a token.
func (r *rateLimits) limited(name string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.bucket(name, now)
	return b != nil && !b.allow(now)
}

// take uses one of name's tokens.
func (r *rateLimits) take(name string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b := r.bucket(name, now); b != nil {
		b.take(now)
	}
}

// next is the earliest time a rate-limited pipeline may start again.
func (r *rateLimits) next(now time.Time) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var next time.Time
	for _, b := range r.buckets {
		if t := b.next(now); t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return next
}

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
