package uplink

import "time"

// Clock is the uplink's time source: backoff, schedule windows, the
// daily budget, the bandwidth cap and PUBACK timeouts all read it, so
// tests drive them without sleeping.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that sends the time on its channel once d
	// has passed.
	NewTimer(d time.Duration) Timer
}

// Timer is a stoppable one-shot timer from a Clock.
type Timer interface {
	C() <-chan time.Time
	// Stop stops the timer; it reports whether it stopped it before it
	// fired.
	Stop() bool
}

type systemClock struct{}

func (systemClock) Now() time.Time                 { return time.Now() }
func (systemClock) NewTimer(d time.Duration) Timer { return sysTimer{time.NewTimer(d)} }

type sysTimer struct{ t *time.Timer }

func (t sysTimer) C() <-chan time.Time { return t.t.C }
func (t sysTimer) Stop() bool          { return t.t.Stop() }

// SystemClock is the real clock.
var SystemClock Clock = systemClock{}
