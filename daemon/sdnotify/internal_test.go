package sdnotify

import (
	"errors"
	"testing"
	"time"
)

func TestWatchdogInterval(t *testing.T) {
	const self = 4242
	for _, c := range []struct {
		name, usec, pid string
		want            time.Duration
		err             error
	}{
		{"unset", "", "", 0, nil},
		{"unset with a pid", "", "4242", 0, nil},
		{"for everyone", "30000000", "", 30 * time.Second, nil},
		{"for this process", "1500000", "4242", 1500 * time.Millisecond, nil},
		{"for another process", "30000000", "1", 0, nil},
		{"zero", "0", "", 0, ErrBadWatchdog},
		{"negative", "-5", "", 0, ErrBadWatchdog},
		{"not a number", "30s", "", 0, ErrBadWatchdog},
		{"overflows a duration", "18446744073709551615", "", 0, ErrBadWatchdog},
		{"bad pid", "30000000", "me", 0, ErrBadWatchdog},
		{"zero pid", "30000000", "0", 0, ErrBadWatchdog},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := watchdogInterval(c.usec, c.pid, self)
			if got != c.want || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
				t.Fatalf("watchdogInterval(%q, %q) = %v, %v; want %v, %v", c.usec, c.pid, got, err, c.want, c.err)
			}
		})
	}
}
