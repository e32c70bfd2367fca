package sdnotify

import (
	"context"
	"log/slog"
	"time"
)

// Watchdog keeps the service manager's watchdog fed while the daemon is
// healthy. Its zero value, or one with a disabled Notifier or no Interval,
// does nothing: Run returns at once.
type Watchdog struct {
	// Notifier receives the pings.
	Notifier *Notifier
	// Interval is the timeout the manager enforces (WatchdogInterval);
	// pings go out every half of it, as sd_watchdog_enabled(3) advises, so
	// one late ping is not yet a restart.
	Interval time.Duration
	// Logger records health transitions and failed sends; nil discards.
	Logger *slog.Logger
}

// Run pings the watchdog at once and then every Interval/2, each time only
// if healthy reports true (a nil healthy counts as always true). While
// healthy reports false no ping is sent, so the manager restarts the daemon
// once Interval has passed since the last one; when it reports true again
// in time, pinging resumes. Run returns nil when ctx ends, and at once when
// there is nothing to ping.
//
// healthy is called from Run's goroutine and must return promptly: read an
// atomic heartbeat or a timestamp, never wait on the loop being checked. A
// healthy that blocks withholds pings — the right outcome for a hung
// daemon — but also keeps Run from returning until it does.
//
// A ping that cannot be sent is logged and retried at the next tick: the
// manager being briefly unreachable (re-executing itself) must not stop the
// daemon, and if it stays unreachable the missing pings say so.
func (w *Watchdog) Run(ctx context.Context, healthy func() bool) error {
	if w == nil || !w.Notifier.Enabled() || w.Interval <= 0 {
		return nil
	}
	log := w.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	period := w.Interval / 2
	if period <= 0 { // a 1ns Interval: a ticker needs a positive period
		period = w.Interval
	}
	tick := time.NewTicker(period)
	defer tick.Stop()

	wasHealthy, sendFailing := true, false
	var lastPing time.Time
	for {
		ok := healthy == nil || healthy()
		switch {
		case !ok && wasHealthy:
			since := "never"
			if !lastPing.IsZero() {
				since = time.Since(lastPing).Round(time.Millisecond).String() + " ago"
			}
			log.Error("health check failed: withholding watchdog pings; the service manager restarts emberd unless it recovers",
				"watchdog", w.Interval, "last_ping", since)
		case ok && !wasHealthy:
			log.Warn("health check passes again: watchdog pings resume")
		}
		wasHealthy = ok
		if ok {
			err := w.Notifier.Watchdog()
			switch {
			case err != nil && !sendFailing:
				log.Warn("watchdog ping not sent", "socket", w.Notifier.Addr(), "err", err)
			case err == nil && sendFailing:
				log.Info("watchdog ping sent again", "socket", w.Notifier.Addr())
			}
			sendFailing = err != nil
			if err == nil {
				lastPing = time.Now()
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
