package fleet

import (
	"context"
	"errors"
)

// Auditor records administrative actions; daemon/audit's *Log satisfies
// it. Record must not fail the action it records (it logs its own
// errors) and should return promptly: the updater calls it on the
// goroutine that owns the state.
type Auditor interface {
	Record(ctx context.Context, action, actor string, err error, details map[string]any)
}

// The actions the updater audits, each with actor AuditActor. A manual
// rollback is audited by whoever asked for it (UpdateService.Rollback),
// not again here.
const (
	// AuditActivate: the daemon was switched to a target (err: the switch
	// failed, and a rollback follows).
	AuditActivate = "fleet.activate"
	// AuditCommit: a target passed its checks and takes traffic (err: the
	// commit failed, and a rollback follows).
	AuditCommit = "fleet.commit"
	// AuditRollback: the daemon went back to the committed release by
	// itself, after a failed switch, check or commit, or a crash loop.
	AuditRollback = "fleet.rollback"
	// AuditActor is the actor of the updater's records.
	AuditActor = "fleet"
)

// audit records the action a transition from from to to, made by ev,
// completed. It is called after the transition is persisted: the record
// says what the device did, not what it was about to do.
func (u *Updater) audit(from, to State, ev Event) {
	if u.opts.Auditor == nil {
		return
	}
	rec := func(action string, err error, details map[string]any) {
		u.opts.Auditor.Record(context.Background(), action, AuditActor, err, details)
	}
	target := func(s State) map[string]any {
		if s.Target == nil {
			return map[string]any{}
		}
		return map[string]any{"version": s.Target.Version, "digest": s.Target.Digest, "previous": s.Current.Version}
	}
	switch e := ev.(type) {
	case EvActivated:
		rec(AuditActivate, nil, target(from))
	case EvCommitted:
		rec(AuditCommit, nil, target(from))
	case EvRollback:
		switch from.Phase {
		case PhaseActivating:
			rec(AuditActivate, errors.New(e.Reason), target(from))
		case PhaseCommitting:
			rec(AuditCommit, errors.New(e.Reason), target(from))
		}
	case EvRolledBack:
		if from.RollbackTo != nil {
			return // manual: audited by the caller of Rollback
		}
		d := map[string]any{"version": to.Current.Version, "reason": from.Reason}
		if from.Target != nil {
			d["from"] = from.Target.Version
		}
		rec(AuditRollback, nil, d)
	}
}
