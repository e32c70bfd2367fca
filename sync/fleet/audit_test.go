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

// fakeAuditor keeps what the updater records.
type fakeAuditor struct {
	mu      sync.Mutex
	entries []auditEntry
}

type auditEntry struct {
	action, actor string
	err           error
	details       map[string]any
}

func (a *fakeAuditor) Record(_ context.Context, action, actor string, err error, details map[string]any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries = append(a.entries, auditEntry{action, actor, err, details})
}

// summary lists the records as "action version ok|error".
func (a *fakeAuditor) summary() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, e := range a.entries {
		s := fmt.Sprintf("%s %v", e.action, e.details["version"])
		if e.err != nil {
			s += " error"
		}
		out = append(out, s)
	}
	return out
}

func (a *fakeAuditor) all() []auditEntry {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.entries)
}

// TestAutomaticActionsAreAudited: every activation, commit and automatic
// rollback the updater makes leaves an audit record, with the version
// and, for a rollback, the reason; a manual rollback is left to its
// caller.
func TestAutomaticActionsAreAudited(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(w *world)
		want  []string
	}{
		{"committed", func(*world) {}, []string{"fleet.activate 1", "fleet.commit 1"}},
		{"check fails", func(w *world) {
			w.chk.respond = func(context.Context, Release, Check) (CheckResult, error) {
				return CheckResult{}, errors.New("model failed to load")
			}
		}, []string{"fleet.activate 1", "fleet.rollback 0"}},
		{"activate fails", func(w *world) { w.act.activateErr = errors.New("no such model") },
			[]string{"fleet.activate 1 error", "fleet.rollback 0"}},
		{"commit fails", func(w *world) { w.act.commitErr = errors.New("registry full") },
			[]string{"fleet.activate 1", "fleet.commit 1 error", "fleet.rollback 0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			tc.setup(w)
			r := w.start(w.options())
			defer r.stop(w)
			m := w.manifest(1, 1, "qwen")
			m.Checks = []Check{{Prompt: "p", MaxTokens: 4}}
			w.publish(fleetTopic, m)
			s := r.waitPhase(t, PhaseActive, PhaseRolledBack)
			if got := w.aud.summary(); !slices.Equal(got, tc.want) {
				t.Fatalf("audited %q, want %q", got, tc.want)
			}
			for _, e := range w.aud.all() {
				if e.actor != AuditActor {
					t.Errorf("%s by %q, want %q", e.action, e.actor, AuditActor)
				}
				if e.action == AuditRollback && (e.details["reason"] != s.Reason || s.Reason == "" || e.details["from"] != int64(1)) {
					t.Errorf("rollback record %v, want reason %q from version 1", e.details, s.Reason)
				}
			}
		})
	}
}

// TestCrashLoopRollbackIsAudited: the rollback Boot makes after a crash
// loop is audited with its reason.
func TestCrashLoopRollbackIsAudited(t *testing.T) {
	w := newWorld(t)
	hang := make(chan struct{})
	defer close(hang)
	w.chk.respond = func(ctx context.Context, _ Release, _ Check) (CheckResult, error) {
		select {
		case <-hang:
		case <-ctx.Done():
		}
		return CheckResult{}, errors.New("killed")
	}
	m := w.manifest(1, 1, "qwen")
	m.Checks = []Check{{Prompt: "p", MaxTokens: 4}}
	w.publish(fleetTopic, m)
	o := w.options()
	o.MaxBootAttempts = 1
	r := w.start(o)
	r.waitPhase(t, PhaseChecking)
	r.stop(w)
	w.reopenStore()
	r = w.start(w.options()) // attempt 1
	r.waitPhase(t, PhaseChecking)
	r.stop(w)
	w.reopenStore()
	o = w.options()
	o.MaxBootAttempts = 1
	u, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Boot(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := w.aud.all()
	if len(got) == 0 || got[len(got)-1].action != AuditRollback ||
		!strings.Contains(fmt.Sprint(got[len(got)-1].details["reason"]), ErrCrashLoop.Error()) {
		t.Fatalf("audit after a crash-loop rollback: %+v", got)
	}
}

// TestManualRollbackIsNotAuditedTwice: the operator's rollback is
// audited by UpdateService, not by the updater.
func TestManualRollbackIsNotAuditedTwice(t *testing.T) {
	w := newWorld(t)
	r := w.start(w.options())
	defer r.stop(w)
	w.publish(fleetTopic, w.manifest(1, 1, "qwen"))
	r.waitPhase(t, PhaseActive)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.u.Rollback(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if got, want := w.aud.summary(), []string{"fleet.activate 1", "fleet.commit 1"}; !slices.Equal(got, want) {
		t.Fatalf("audited %q, want %q", got, want)
	}
}
