package fleet

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func testTarget(version int64, names ...string) Target {
	t := Target{Release: Release{Version: version}, Digest: strings.Repeat("d", 63) + string(rune('0'+version%10))}
	for _, n := range names {
		sum := strings.Repeat(string(rune('a'+len(n)%6)), 63) + string(rune('0'+version%10))
		t.Artifacts = append(t.Artifacts, Installed{
			Artifact: Artifact{Kind: KindModel, Name: n, URL: "http://x/" + n, SHA256: sum, Size: 10, License: "mit"},
			Path:     "/fleet/artifacts/" + sum + ".gguf",
		})
	}
	return t
}

// step is one event of a chain and the phase it must lead to ("" when the
// event must be refused and leave the state as it was).
type step struct {
	ev   Event
	want Phase
	err  error // the refusal, when want is ""
}

var refused = Phase(255)

func TestNextChains(t *testing.T) {
	m := machine{keep: 2, maxAttempts: 3}
	v1 := testTarget(1, "qwen")
	v2 := testTarget(2, "qwen", "pipes")
	cases := []struct {
		name  string
		steps []step
		check func(t *testing.T, s State)
	}{
		{"happy path", []step{
			{EvStart{}, PhaseIdle, nil},
			{EvAccept{v2}, PhaseDownloading, nil},
			{EvDownloaded{0}, PhaseDownloading, nil},
			{EvDownloaded{1}, PhaseVerifying, nil},
			{EvVerified{}, PhaseActivating, nil},
			{EvActivated{}, PhaseChecking, nil},
			{EvChecksPassed{}, PhaseCommitting, nil},
			{EvCommitted{}, PhaseActive, nil},
		}, func(t *testing.T, s State) {
			if s.Current.Version != 2 || s.Target != nil || s.Highest != 2 || len(s.Kept) != 1 || s.Kept[0].Version != 0 {
				t.Errorf("after commit: current %d, target %v, highest %d, kept %v", s.Current.Version, s.Target, s.Highest, keptVersions(s.Kept))
			}
		}},
		{"failed download keeps the old version", []step{
			{EvAccept{v1}, PhaseDownloading, nil},
			{EvFail{"404"}, PhaseFailed, nil},
		}, func(t *testing.T, s State) {
			if s.Current.Version != 0 || s.Reason != "404" || s.Highest != 1 {
				t.Errorf("state %+v", s)
			}
		}},
		{"a newer manifest replaces the target before the switch", []step{
			{EvAccept{v1}, PhaseDownloading, nil},
			{EvDownloaded{0}, PhaseVerifying, nil},
			{EvAccept{v2}, PhaseDownloading, nil},
		}, func(t *testing.T, s State) {
			if s.Target.Version != 2 || s.NextArtifact != 0 {
				t.Errorf("target %d next %d", s.Target.Version, s.NextArtifact)
			}
		}},
		{"no new manifest after the switch", []step{
			{EvAccept{v1}, PhaseDownloading, nil},
			{EvDownloaded{0}, PhaseVerifying, nil},
			{EvVerified{}, PhaseActivating, nil},
			{EvAccept{v2}, refused, nil},
		}, nil},
		{"replay refused", []step{
			{EvAccept{v2}, PhaseDownloading, nil},
			{EvAccept{v1}, refused, ErrNotNewer},
			{EvAccept{v2}, refused, ErrNotNewer},
		}, nil},
		{"failing check rolls back", []step{
			{EvAccept{v1}, PhaseDownloading, nil},
			{EvDownloaded{0}, PhaseVerifying, nil},
			{EvVerified{}, PhaseActivating, nil},
			{EvActivated{}, PhaseChecking, nil},
			{EvRollback{"check 0: no"}, PhaseRollingBack, nil},
			{EvRolledBack{}, PhaseRolledBack, nil},
		}, func(t *testing.T, s State) {
			if s.Current.Version != 0 || s.Reason != "check 0: no" || s.Highest != 1 || len(s.Retiring) != 1 || s.Retiring[0].Version != 1 {
				t.Errorf("state %+v", s)
			}
		}},
		{"crash loop rolls back on the fourth start", []step{
			{EvAccept{v1}, PhaseDownloading, nil},
			{EvStart{}, PhaseDownloading, nil},
			{EvDownloaded{0}, PhaseVerifying, nil},
			{EvVerified{}, PhaseActivating, nil},
			{EvStart{}, PhaseActivating, nil},
			{EvActivated{}, PhaseChecking, nil},
			{EvStart{}, PhaseChecking, nil},
			{EvStart{}, PhaseChecking, nil},
			{EvStart{}, PhaseRollingBack, nil},
			{EvRolledBack{}, PhaseRolledBack, nil},
		}, func(t *testing.T, s State) {
			if !strings.Contains(s.Reason, ErrCrashLoop.Error()) || s.Attempts != 0 {
				t.Errorf("reason %q attempts %d", s.Reason, s.Attempts)
			}
		}},
		{"refused manifest", []step{
			{EvRefuse{Refusal{Version: 3, Digest: "x", Reason: "license"}}, PhaseFailed, nil},
			{EvAccept{v1}, PhaseDownloading, nil}, // not accepted: Highest was not raised
		}, nil},
		{"stale outcomes are refused", []step{
			{EvVerified{}, refused, nil},
			{EvAccept{v2}, PhaseDownloading, nil},
			{EvDownloaded{1}, refused, nil},
			{EvActivated{}, refused, nil},
			{EvRollback{"x"}, refused, nil},
			{EvCommitted{}, refused, nil},
			{EvRolledBack{}, refused, nil},
			{EvRetired{7}, refused, nil},
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := State{Format: stateFormat}
			for i, st := range tc.steps {
				before := cloneState(s)
				n, err := m.next(s, st.ev)
				if !reflect.DeepEqual(s, before) {
					t.Fatalf("step %d: next modified its input", i)
				}
				if st.want == refused {
					if err == nil {
						t.Fatalf("step %d: %s in %s accepted, want refused", i, st.ev.eventName(), s.Phase)
					}
					if st.err != nil && !errors.Is(err, st.err) {
						t.Fatalf("step %d: err %v, want %v", i, err, st.err)
					}
					if !reflect.DeepEqual(n, s) {
						t.Fatalf("step %d: a refused event changed the state", i)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d: %s: %v", i, st.ev.eventName(), err)
				}
				if n.Phase != st.want {
					t.Fatalf("step %d: %s in %s led to %s, want %s", i, st.ev.eventName(), s.Phase, n.Phase, st.want)
				}
				if err := n.check(); err != nil {
					t.Fatalf("step %d: invariant broken: %v", i, err)
				}
				s = n
			}
			if tc.check != nil {
				tc.check(t, s)
			}
		})
	}
}

// commitThrough applies a whole successful update of t.
func commitThrough(t *testing.T, m machine, s State, tg Target) State {
	t.Helper()
	evs := []Event{EvAccept{tg}}
	for i := range tg.Artifacts {
		evs = append(evs, EvDownloaded{i})
	}
	evs = append(evs, EvVerified{}, EvActivated{}, EvChecksPassed{}, EvCommitted{})
	for _, ev := range evs {
		var err error
		if s, err = m.next(s, ev); err != nil {
			t.Fatalf("%s: %v", ev.eventName(), err)
		}
	}
	return s
}

func TestNextKeepsNVersionsAndRetiresTheRest(t *testing.T) {
	m := machine{keep: 2, maxAttempts: 3}
	s := State{}
	for v := int64(1); v <= 4; v++ {
		s = commitThrough(t, m, s, testTarget(v, "qwen"))
	}
	if got := keptVersions(s.Kept); !reflect.DeepEqual(got, []int64{3, 2}) {
		t.Errorf("kept %v, want [3 2]", got)
	}
	if got := keptVersions(s.Retiring); !reflect.DeepEqual(got, []int64{0, 1}) {
		t.Errorf("retiring %v, want [0 1]", got)
	}
	s, err := m.next(s, EvRetired{0})
	if err != nil {
		t.Fatal(err)
	}
	if s, err = m.next(s, EvRetired{1}); err != nil || s.Retiring != nil {
		t.Fatalf("retiring after both retired: %v, %v", s.Retiring, err)
	}
}

func TestNextManualRollback(t *testing.T) {
	m := machine{keep: 3, maxAttempts: 3}
	s := State{}
	for v := int64(1); v <= 3; v++ {
		s = commitThrough(t, m, s, testTarget(v, "qwen"))
	}
	// kept: 2, 1, 0
	if _, err := m.next(s, EvManualRollback{To: 7}); !errors.Is(err, ErrNotKept) {
		t.Errorf("rollback to an unknown version: %v", err)
	}
	n, err := m.next(s, EvManualRollback{To: 1})
	if err != nil || n.Phase != PhaseRollingBack || n.RollbackTo.Version != 1 {
		t.Fatalf("rollback to 1: %+v, %v", n, err)
	}
	if _, err := m.next(n, EvManualRollback{To: 0}); !errors.Is(err, ErrBusy) {
		t.Errorf("rollback while rolling back: %v", err)
	}
	n, err = m.next(n, EvRolledBack{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Current.Version != 1 || !reflect.DeepEqual(keptVersions(n.Kept), []int64{0}) ||
		!reflect.DeepEqual(keptVersions(n.Retiring), []int64{3, 2}) || n.Highest != 3 {
		t.Errorf("after rollback: current %d kept %v retiring %v highest %d", n.Current.Version,
			keptVersions(n.Kept), keptVersions(n.Retiring), n.Highest)
	}
	// Version 2 was accepted once: it can never be installed again.
	if _, err := m.next(n, EvAccept{testTarget(2, "qwen")}); !errors.Is(err, ErrNotNewer) {
		t.Errorf("re-accepting a rolled-back-over version: %v", err)
	}
	// While an update runs, no manual rollback.
	busy, _ := m.next(n, EvAccept{testTarget(4, "qwen")})
	if _, err := m.next(busy, EvManualRollback{To: 0}); !errors.Is(err, ErrBusy) {
		t.Errorf("rollback during a download: %v", err)
	}
}

func TestPhaseText(t *testing.T) {
	for p := PhaseIdle; p <= PhaseFailed; p++ {
		b, err := p.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var q Phase
		if err := q.UnmarshalText(b); err != nil || q != p {
			t.Errorf("%s round trip: %v %v", p, q, err)
		}
	}
	var q Phase
	if err := q.UnmarshalText([]byte("bogus")); err == nil {
		t.Error("unknown phase accepted")
	}
}

func TestStateRoundTripAndDamage(t *testing.T) {
	m := machine{keep: 2, maxAttempts: 3}
	s := commitThrough(t, m, State{}, testTarget(1, "qwen"))
	s, _ = m.next(s, EvAccept{testTarget(2, "qwen", "p")})
	data, err := encodeState(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeState(data)
	if err != nil || !reflect.DeepEqual(got, s) {
		t.Fatalf("round trip: %v\n got %+v\nwant %+v", err, got, s)
	}
	for name, bad := range map[string]string{
		"not json":          `{`,
		"unknown field":     `{"format":1,"phase":"idle","current":{"version":0},"transitions":0,"extra":1}`,
		"newer format":      `{"format":2,"phase":"idle","current":{"version":0},"transitions":0}`,
		"unknown phase":     `{"format":1,"phase":"dancing","current":{"version":0},"transitions":0}`,
		"busy, no target":   `{"format":1,"phase":"checking","current":{"version":0},"transitions":0}`,
		"current > highest": `{"format":1,"phase":"active","current":{"version":5},"highest_version":2,"transitions":0}`,
		"trailing data":     `{"format":1,"phase":"idle","current":{"version":0},"transitions":0} {}`,
	} {
		if _, err := decodeState([]byte(bad)); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}
