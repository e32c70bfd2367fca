package uplink

import (
	"fmt"
	"slices"
)

// State is where the uplink's link stands.
type State uint8

// The states. The last four are online: connected to the broker, and
// differ only in whether records go out.
const (
	StateStopped         State = iota // Run is not running
	StateOffline                      // no connection; waiting for the next dial attempt
	StateConnecting                   // dialing the broker
	StateSending                      // online, batches going out or awaiting PUBACK
	StateIdle                         // online, nothing to send
	StateOutsideSchedule              // online, uploads held until a schedule window opens
	StateBudgetExhausted              // online, uploads held until local midnight
)

var stateNames = [...]string{
	StateStopped: "stopped", StateOffline: "offline", StateConnecting: "connecting",
	StateSending: "sending", StateIdle: "idle", StateOutsideSchedule: "outside_schedule",
	StateBudgetExhausted: "budget_exhausted",
}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", s)
}

// MarshalText writes the state's name.
func (s State) MarshalText() ([]byte, error) {
	if int(s) >= len(stateNames) {
		return nil, fmt.Errorf("unknown uplink state %d", s)
	}
	return []byte(s.String()), nil
}

// UnmarshalText reads a state's name.
func (s *State) UnmarshalText(b []byte) error {
	i := slices.Index(stateNames[:], string(b))
	if i < 0 {
		return fmt.Errorf("unknown uplink state %q", b)
	}
	*s = State(i)
	return nil
}

// Online reports whether s is one of the connected states.
func (s State) Online() bool { return s >= StateSending && s <= StateBudgetExhausted }

// event is what happens to the uplink; next maps (state, event) to the
// next state.
type event uint8

const (
	evDial            event = iota // a dial attempt begins (start, backoff elapsed, Trigger)
	evDialFailed                   // the attempt failed
	evConnected                    // the broker accepted the connection
	evLost                         // the connection ended
	evWork                         // uploads allowed, records to send or batches in flight
	evDrained                      // uploads allowed, nothing to send and nothing in flight
	evOutsideSchedule              // records may not go out now: outside every window
	evBudgetExhausted              // records may not go out now: today's bytes are spent
	evStop                         // Run returns
)

var eventNames = [...]string{
	evDial: "dial", evDialFailed: "dial_failed", evConnected: "connected", evLost: "lost",
	evWork: "work", evDrained: "drained", evOutsideSchedule: "outside_schedule",
	evBudgetExhausted: "budget_exhausted", evStop: "stop",
}

func (e event) String() string {
	if int(e) < len(eventNames) {
		return eventNames[e]
	}
	return fmt.Sprintf("event(%d)", e)
}

// next is the uplink's state machine. An event that means nothing in a
// state leaves it unchanged.
func next(s State, e event) State {
	if e == evStop {
		return StateStopped
	}
	switch {
	case s == StateStopped || s == StateOffline:
		if e == evDial {
			return StateConnecting
		}
	case s == StateConnecting:
		switch e {
		case evDialFailed:
			return StateOffline
		case evConnected:
			return StateIdle
		}
	case s.Online():
		switch e {
		case evLost:
			return StateOffline
		case evWork:
			return StateSending
		case evDrained:
			return StateIdle
		case evOutsideSchedule:
			return StateOutsideSchedule
		case evBudgetExhausted:
			return StateBudgetExhausted
		}
	}
	return s
}
