package fleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// crashScenario is a device on version 2 (version 1 kept, KeepVersions
// 1) that is told to install version 3: a new model plus the pipelines
// file version 2 already has. With failChecks the new model fails its
// check and must be rolled back.
type crashScenario struct {
	w          *world
	m3         *Manifest
	failChecks bool
}

func newCrashScenario(t *testing.T, failChecks bool) *crashScenario {
	w := newWorld(t)
	w.opts = func(o *Options) {
		o.KeepVersions = 1
		o.Download.CheckpointBytes = 16 << 10
	}
	r := w.start(w.options())
	m1 := w.manifest(1, 1, "qwen", "pipes")
	w.publish(fleetTopic, m1)
	r.waitPhase(t, PhaseActive)
	m2 := w.manifest(2, 2, "qwen", "pipes")
	w.publish(fleetTopic, m2)
	eventually(t, "version 2", 10*time.Second, func() bool {
		return r.u.Status().ActiveVersion == 2 && len(w.storedState().Retiring) == 0
	})
	r.stop(w)

	m3 := w.manifest(3, 3, "qwen")
	m3.Artifacts = append(m3.Artifacts, m2.Artifacts[1])
	m3.Checks = []Check{{Prompt: "pump?", MaxTokens: 8, Contains: Strings{"pump"}}}
	w.publish(fleetTopic, m3)
	if failChecks {
		w.chk.respond = func(_ context.Context, rel Release, _ Check) (CheckResult, error) {
			if rel.Version == 3 {
				return CheckResult{Output: "valve"}, nil
			}
			return CheckResult{Output: "pump"}, nil
		}
	}
	w.act.mu.Lock()
	w.act.calls = nil
	w.act.mu.Unlock()
	return &crashScenario{w: w, m3: m3, failChecks: failChecks}
}

// settled reports whether the update is over and its clean-up done.
func (c *crashScenario) settled(u *Updater) bool {
	s := u.Status()
	done := (s.Phase == PhaseActive && s.ActiveVersion == 3) || (s.Phase == PhaseRolledBack && s.HighestVersion == 3)
	if !done {
		return false
	}
	st := c.w.storedState()
	return len(st.Retiring) == 0 && len(c.w.files("partial")) == 0 && len(c.w.files("artifacts")) == c.wantFiles(st)
}

// wantFiles is how many artifact files the settled state keeps.
func (c *crashScenario) wantFiles(st State) int {
	used := referenced(st, -1)
	return len(used)
}

// checkInvariants is what must hold at any instant, a crash included:
// the daemon runs version 2 or version 3, complete; every kept release
// is complete; the updater broke no rule.
func (c *crashScenario) checkInvariants(t *testing.T, when string) {
	t.Helper()
	active, _, _, violations := c.w.act.state()
	if len(violations) > 0 {
		t.Fatalf("%s: %s", when, strings.Join(violations, "; "))
	}
	if active.Version != 2 && active.Version != 3 {
		t.Fatalf("%s: the daemon runs version %d, neither the old nor the new", when, active.Version)
	}
	if err := releaseComplete(active); err != nil {
		t.Fatalf("%s: the daemon runs version %d with a broken file: %v", when, active.Version, err)
	}
	st := c.w.storedState()
	for _, rel := range append([]Release{st.Current}, st.Kept...) {
		if err := releaseComplete(rel); err != nil {
			t.Fatalf("%s: release %d is kept but broken: %v", when, rel.Version, err)
		}
	}
}

// checkOutcome is where the device must end.
func (c *crashScenario) checkOutcome(t *testing.T, u *Updater) {
	t.Helper()
	active, serving, _, _ := c.w.act.state()
	s := u.Status()
	switch {
	case !serving:
		t.Fatalf("the daemon ends not serving version %d", active.Version)
	case c.failChecks && (active.Version != 2 || s.Phase != PhaseRolledBack || !strings.Contains(s.Reason, ErrCheckFailed.Error())):
		t.Fatalf("with failing checks: daemon on %d, status %+v; want version 2, rolled back", active.Version, s)
	case !c.failChecks && s.Phase == PhaseRolledBack && strings.Contains(s.Reason, ErrCrashLoop.Error()):
		if active.Version != 2 {
			t.Fatalf("crash-loop rollback left the daemon on %d", active.Version)
		}
	case !c.failChecks && (active.Version != 3 || s.Phase != PhaseActive || s.ActiveVersion != 3):
		t.Fatalf("daemon on %d, status %+v; want version 3 active", active.Version, s)
	}
}

// crashHook fails at the n-th point.
type crashHook struct {
	mu     sync.Mutex
	n, at  int
	points []string
}

func (h *crashHook) hook(point string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n++
	h.points = append(h.points, point)
	if h.n == h.at {
		return errCrashed
	}
	return nil
}

func (h *crashHook) count() (int, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n, slices.Clone(h.points)
}

// lifetime runs one life of the daemon: until the hook crashes it, or
// until the update settles. It returns whether it crashed.
func (c *crashScenario) lifetime(t *testing.T, h *crashHook) bool {
	t.Helper()
	o := c.w.options()
	if h != nil {
		o.hook = h.hook
	}
	r := c.w.start(o)
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-r.done:
			c.w.link.forget()
			if !errors.Is(err, errCrashed) {
				t.Fatalf("Run = %v, want the simulated crash", err)
			}
			return true
		case <-time.After(2 * time.Millisecond):
		}
		if c.settled(r.u) {
			// Let anything queued run into the hook before deciding.
			time.Sleep(20 * time.Millisecond)
			err := r.stop(c.w)
			if errors.Is(err, errCrashed) {
				return true
			}
			c.checkOutcome(t, r.u)
			return false
		}
		if time.Now().After(deadline) {
			r.stop(c.w)
			n, pts := h.count()
			t.Fatalf("no crash and no outcome; status %+v; %d points: %v", r.u.Status(), n, pts)
		}
	}
}

// TestCrashAtEveryPoint crashes the updater at its first persistence
// point or side-effect edge, then its second, and so on until a life runs
// to the end without reaching the crash. After each crash the invariants
// must hold, and a fresh updater on the reopened store must reach the
// right outcome.
func TestCrashAtEveryPoint(t *testing.T) {
	for _, failChecks := range []bool{false, true} {
		name := "update succeeds"
		if failChecks {
			name = "check fails"
		}
		t.Run(name, func(t *testing.T) {
			var last []string
			for at := 1; ; at++ {
				c := newCrashScenario(t, failChecks)
				h := &crashHook{at: at}
				if !c.lifetime(t, h) {
					if at == 1 {
						t.Fatal("no crash point reached")
					}
					t.Logf("crashed at each of %d points: %s", at-1, strings.Join(last, " "))
					return
				}
				_, pts := h.count()
				last = pts
				where := fmt.Sprintf("crash at point %d (%s)", at, pts[len(pts)-1])
				c.checkInvariants(t, where)
				c.w.reopenStore()
				t0 := time.Now()
				if c.lifetime(t, nil) {
					t.Fatalf("%s: the recovery crashed", where)
				}
				c.checkInvariants(t, where+", recovered")
				if d := time.Since(t0); d > time.Second {
					t.Logf("%s: recovery took %v", where, d)
				}
				if at > 200 {
					t.Fatal("more than 200 points: the scenario does not settle")
				}
			}
		})
	}
}

// TestRepeatedCrashes crashes every life at its k-th point until the
// update settles. k must leave room for the longest step (retiring a
// release with two files: five points): a device that dies at the same
// point of every boot can finish no step longer than that. Crashes while unconfirmed may end in a crash-loop
// rollback, which is a right outcome too; what may never happen is a
// broken invariant.
func TestRepeatedCrashes(t *testing.T) {
	for _, k := range []int{6, 7, 9, 13} {
		t.Run(fmt.Sprintf("every %d points", k), func(t *testing.T) {
			c := newCrashScenario(t, false)
			var lives []string
			for life := 1; ; life++ {
				if life > 100 {
					t.Fatalf("no outcome after 100 lives; the last:\n%s", strings.Join(lives[len(lives)-5:], "\n"))
				}
				h := &crashHook{at: k}
				crashed := c.lifetime(t, h)
				_, pts := h.count()
				lives = append(lives, fmt.Sprintf("life %d: %v", life, pts))
				if !crashed {
					t.Logf("settled after %d lives: %+v", life, c.w.storedState().Phase)
					return
				}
				c.checkInvariants(t, fmt.Sprintf("life %d", life))
				c.w.reopenStore()
			}
		})
	}
}
