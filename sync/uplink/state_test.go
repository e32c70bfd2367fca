package uplink

import "testing"

func TestNext(t *testing.T) {
	online := []State{StateSending, StateIdle, StateOutsideSchedule, StateBudgetExhausted}
	type tc struct {
		from State
		ev   event
		want State
	}
	cases := []tc{
		{StateStopped, evDial, StateConnecting},
		{StateOffline, evDial, StateConnecting},
		{StateConnecting, evDialFailed, StateOffline},
		{StateConnecting, evConnected, StateIdle},
		// Events that mean nothing in a state leave it alone.
		{StateStopped, evConnected, StateStopped},
		{StateOffline, evWork, StateOffline},
		{StateOffline, evLost, StateOffline},
		{StateConnecting, evWork, StateConnecting},
		{StateConnecting, evDial, StateConnecting},
	}
	for _, s := range online {
		cases = append(cases,
			tc{s, evLost, StateOffline},
			tc{s, evWork, StateSending},
			tc{s, evDrained, StateIdle},
			tc{s, evOutsideSchedule, StateOutsideSchedule},
			tc{s, evBudgetExhausted, StateBudgetExhausted},
			tc{s, evDial, s},
			tc{s, evConnected, s},
			tc{s, evDialFailed, s},
		)
	}
	for _, s := range append(online, StateStopped, StateOffline, StateConnecting) {
		cases = append(cases, tc{s, evStop, StateStopped})
	}
	for _, c := range cases {
		t.Run(c.from.String()+"/"+c.ev.String(), func(t *testing.T) {
			if got := next(c.from, c.ev); got != c.want {
				t.Errorf("next(%v, %v) = %v, want %v", c.from, c.ev, got, c.want)
			}
		})
	}
}

// TestStateChains drives the machine through whole stories.
func TestStateChains(t *testing.T) {
	chains := []struct {
		name string
		evs  []event
		want []State
	}{
		{"offline device retries", []event{evDial, evDialFailed, evDial, evDialFailed, evDial},
			[]State{StateConnecting, StateOffline, StateConnecting, StateOffline, StateConnecting}},
		{"drain then idle", []event{evDial, evConnected, evWork, evWork, evDrained},
			[]State{StateConnecting, StateIdle, StateSending, StateSending, StateIdle}},
		{"link drops mid-batch", []event{evDial, evConnected, evWork, evLost, evDial, evConnected, evWork},
			[]State{StateConnecting, StateIdle, StateSending, StateOffline, StateConnecting, StateIdle, StateSending}},
		{"schedule closes and opens", []event{evDial, evConnected, evWork, evOutsideSchedule, evOutsideSchedule, evWork, evDrained},
			[]State{StateConnecting, StateIdle, StateSending, StateOutsideSchedule, StateOutsideSchedule, StateSending, StateIdle}},
		{"budget spent until midnight", []event{evDial, evConnected, evWork, evBudgetExhausted, evLost, evDial, evConnected, evBudgetExhausted, evWork},
			[]State{StateConnecting, StateIdle, StateSending, StateBudgetExhausted, StateOffline, StateConnecting, StateIdle, StateBudgetExhausted, StateSending}},
		{"stop from anywhere", []event{evDial, evConnected, evWork, evStop, evWork},
			[]State{StateConnecting, StateIdle, StateSending, StateStopped, StateStopped}},
	}
	for _, c := range chains {
		t.Run(c.name, func(t *testing.T) {
			s := StateStopped
			for i, e := range c.evs {
				s = next(s, e)
				if s != c.want[i] {
					t.Fatalf("step %d (%v): state %v, want %v", i, e, s, c.want[i])
				}
			}
		})
	}
}

func TestStateText(t *testing.T) {
	for s := StateStopped; s <= StateBudgetExhausted; s++ {
		b, err := s.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back State
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Errorf("%v: round trip gave %v, %v", s, back, err)
		}
	}
	if _, err := State(99).MarshalText(); err == nil {
		t.Error("unknown state marshalled")
	}
	var s State
	if err := s.UnmarshalText([]byte("bogus")); err == nil {
		t.Error("unknown name parsed")
	}
	if !StateIdle.Online() || StateOffline.Online() || StateConnecting.Online() {
		t.Error("Online is wrong")
	}
}
