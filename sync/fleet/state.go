package fleet

import (
	"fmt"
	"slices"
)

// Phase is where an update stands. The updater persists the phase before
// the side effect the phase names, so a restart redoes that side effect;
// every side effect is therefore idempotent (FORMAT.md, "Phases").
type Phase uint8

// The phases. Resting phases (idle, active, rolled_back, failed) have no
// update in progress; unconfirmed phases (activating, checking,
// committing) are those in which a restart counts toward the crash-loop
// limit.
const (
	PhaseIdle        Phase = iota // no update ever attempted
	PhaseDownloading              // fetching the target's artifacts
	PhaseVerifying                // checking size and sha256, moving files into place
	PhaseActivating               // switching the daemon to the target
	PhaseChecking                 // running the target's checks before it takes traffic
	PhaseCommitting               // opening the target to traffic
	PhaseActive                   // the last update succeeded
	PhaseRollingBack              // switching back to the previous release
	PhaseRolledBack               // the last update was rolled back; Reason says why
	PhaseFailed                   // the last update failed before its switch; Reason says why
)

var phaseNames = [...]string{
	PhaseIdle: "idle", PhaseDownloading: "downloading", PhaseVerifying: "verifying",
	PhaseActivating: "activating", PhaseChecking: "checking", PhaseCommitting: "committing",
	PhaseActive: "active", PhaseRollingBack: "rolling_back", PhaseRolledBack: "rolled_back",
	PhaseFailed: "failed",
}

func (p Phase) String() string {
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return fmt.Sprintf("phase(%d)", p)
}

// MarshalText writes the phase's name.
func (p Phase) MarshalText() ([]byte, error) {
	if int(p) >= len(phaseNames) {
		return nil, fmt.Errorf("unknown phase %d", p)
	}
	return []byte(p.String()), nil
}

// UnmarshalText reads a phase's name.
func (p *Phase) UnmarshalText(b []byte) error {
	i := slices.Index(phaseNames[:], string(b))
	if i < 0 {
		return fmt.Errorf("unknown phase %q", b)
	}
	*p = Phase(i)
	return nil
}

// Resting reports whether no update is in progress.
func (p Phase) Resting() bool {
	return p == PhaseIdle || p == PhaseActive || p == PhaseRolledBack || p == PhaseFailed
}

// Unconfirmed reports whether the daemon may already run the target
// without it being confirmed: a restart in these phases counts toward the
// crash-loop limit.
func (p Phase) Unconfirmed() bool {
	return p == PhaseActivating || p == PhaseChecking || p == PhaseCommitting
}

// preSwitch reports whether the running release is still the old one and
// untouched, so a newer manifest may replace the target.
func (p Phase) preSwitch() bool { return p == PhaseDownloading || p == PhaseVerifying }

// Release is a set of artifacts installed together under one manifest
// version. Version 0, with no artifacts, is the baseline: what the daemon
// ran from its own config before any fleet update.
type Release struct {
	Version   int64       `json:"version"`
	Artifacts []Installed `json:"artifacts,omitempty"`
}

// Installed is an artifact with the path of its verified file.
type Installed struct {
	Artifact
	// Path is where the file is (or will be, before verification): in the
	// updater's directory, named by sha256. It stays there until no kept
	// release uses it.
	Path string `json:"path"`
}

// Target is the release being installed, with what the manifest asks of
// it.
type Target struct {
	Release
	// Digest is the hex sha256 of the manifest's canonical encoding.
	Digest string  `json:"digest"`
	Checks []Check `json:"checks,omitempty"`
	// MinVersion is the manifest's min_version: the floor it sets once
	// committed.
	MinVersion int64 `json:"min_version,omitempty"`
	// KeyIDs are the trusted keys whose signatures verified; a key list
	// that drops all of them stops the target before its switch.
	KeyIDs []string `json:"key_ids,omitempty"`
}

// Refusal records a validly signed, newer manifest the device refused
// (license, requirements, space), so the same one is not refused again at
// every reconnect.
type Refusal struct {
	Version int64  `json:"version"`
	Digest  string `json:"digest"`
	Reason  string `json:"reason"`
}

// State is everything the updater persists, as one record written in one
// transaction.
type State struct {
	Format int   `json:"format"`
	Phase  Phase `json:"phase"`
	// Highest is the highest manifest version ever accepted, and
	// HighestDigest that manifest's digest: the rollback protection.
	Highest       int64  `json:"highest_version"`
	HighestDigest string `json:"highest_digest,omitempty"`
	// Floor is the highest min_version of a committed manifest: no
	// release below it is kept, and no operator rolls back below it.
	Floor int64 `json:"min_version,omitempty"`
	// Current is the committed release: what runs when no update is in
	// flight, and what an automatic rollback returns to.
	Current Release `json:"current"`
	// Kept are earlier releases kept for rollback, newest first.
	Kept []Release `json:"kept,omitempty"`
	// Target is the release being installed (nil when resting).
	Target *Target `json:"target,omitempty"`
	// NextArtifact is the index in Target of the artifact to download.
	NextArtifact int `json:"next_artifact,omitempty"`
	// RollbackTo is set by a manual rollback: the kept release to return
	// to. An automatic rollback returns to Current.
	RollbackTo *Release `json:"rollback_to,omitempty"`
	// Retiring are releases dropped from Kept whose files are to go.
	Retiring []Release `json:"retiring,omitempty"`
	// Attempts counts restarts in unconfirmed phases of this update.
	Attempts int `json:"attempts,omitempty"`
	// Transitions counts every transition ever made, for logs and reports.
	Transitions uint64 `json:"transitions"`
	// Reason says why the last update failed or was rolled back.
	Reason  string   `json:"reason,omitempty"`
	Refused *Refusal `json:"refused,omitempty"`
}

// Serving returns the release the daemon serves traffic from in state s:
// the committed one, or, while rolling back, the one being returned to.
// The daemon's Activator derives what it runs from the one update record
// through Serving and Staged instead of keeping a record of its own, so
// a restart at any moment finds one answer.
func (s State) Serving() Release {
	if s.Phase == PhaseRollingBack && s.RollbackTo != nil {
		return *s.RollbackTo
	}
	return s.Current
}

// Staged returns the release switched to but not committed — its models
// run under staging names for the checks and take no traffic — or nil.
// It is the target in the unconfirmed phases (activating, checking,
// committing): the phase is persisted before the switch, so a restart
// stages it again, as Activator.Activate would.
func (s State) Staged() *Release {
	if !s.Phase.Unconfirmed() || s.Target == nil {
		return nil
	}
	r := s.Target.Release
	return &r
}

// Leaving returns the release a rollback in progress abandons (the
// target an automatic rollback undoes), or nil.
func (s State) Leaving() *Release {
	if s.Phase != PhaseRollingBack || s.Target == nil {
		return nil
	}
	r := s.Target.Release
	return &r
}

// stateFormat is the State layout this code writes.
const stateFormat = 1

// Event is an input to the state machine: an outcome of a side effect, a
// verified manifest, a restart, an operator request.
type Event interface{ eventName() string }

// The events.
type (
	// EvStart: the updater (re)started.
	EvStart struct{}
	// EvAccept: a verified manifest newer than Highest that this device
	// can install.
	EvAccept struct{ Target Target }
	// EvRefuse: a verified manifest newer than Highest that this device
	// will not install.
	EvRefuse struct{ Refusal Refusal }
	// EvDownloaded: artifact Index is complete on disk.
	EvDownloaded struct{ Index int }
	// EvFail: a permanent failure before the switch.
	EvFail struct{ Reason string }
	// EvVerified: every artifact has its size and sha256 and is in place.
	EvVerified struct{}
	// EvActivated: the switch is done.
	EvActivated struct{}
	// EvChecksPassed: every check met its expectations.
	EvChecksPassed struct{}
	// EvCommitted: the target takes traffic.
	EvCommitted struct{}
	// EvRollback: a failure after the switch (activation, a check, the
	// commit): return to Current.
	EvRollback struct{ Reason string }
	// EvRolledBack: the rollback's switch is done.
	EvRolledBack struct{}
	// EvManualRollback: an operator asked to return to kept version To.
	EvManualRollback struct{ To int64 }
	// EvRetired: the files of retiring release Version are gone.
	EvRetired struct{ Version int64 }
)

func (EvStart) eventName() string          { return "start" }
func (EvAccept) eventName() string         { return "accept" }
func (EvRefuse) eventName() string         { return "refuse" }
func (EvDownloaded) eventName() string     { return "downloaded" }
func (EvFail) eventName() string           { return "fail" }
func (EvVerified) eventName() string       { return "verified" }
func (EvActivated) eventName() string      { return "activated" }
func (EvChecksPassed) eventName() string   { return "checks_passed" }
func (EvCommitted) eventName() string      { return "committed" }
func (EvRollback) eventName() string       { return "rollback" }
func (EvRolledBack) eventName() string     { return "rolled_back" }
func (EvManualRollback) eventName() string { return "manual_rollback" }
func (EvRetired) eventName() string        { return "retired" }

// machine holds the limits the transition function applies.
type machine struct {
	// keep is how many earlier releases stay for rollback.
	keep int
	// maxAttempts is how many restarts an unconfirmed update survives;
	// one more rolls it back.
	maxAttempts int
}

// next is the transition function: pure, it returns the state after ev
// without touching s. An event that makes no sense in s's phase (a stale
// outcome) is an error and s is returned unchanged.
func (m machine) next(s State, ev Event) (State, error) {
	n := cloneState(s)
	n.Format = stateFormat
	invalid := func() (State, error) {
		return s, fmt.Errorf("event %s in phase %s", ev.eventName(), s.Phase)
	}
	switch e := ev.(type) {
	case EvStart:
		if !s.Phase.Unconfirmed() {
			return s, nil // nothing to count
		}
		n.Attempts++
		if n.Attempts > m.maxAttempts {
			n.Phase = PhaseRollingBack
			n.RollbackTo = nil
			n.Reason = fmt.Sprintf("%v: restarted %d times while %s version %d", ErrCrashLoop, n.Attempts, s.Phase, s.Target.Version)
		}
	case EvAccept, EvRefuse:
		// A newer manifest is taken at rest, or in place of a target not
		// yet switched to; never while a switch is unconfirmed.
		if !s.Phase.Resting() && !s.Phase.preSwitch() {
			return invalid()
		}
		if err := m.newer(&n, e); err != nil {
			return s, err
		}
	case EvDownloaded:
		if s.Phase != PhaseDownloading || e.Index != s.NextArtifact {
			return invalid()
		}
		n.NextArtifact++
		if n.NextArtifact >= len(s.Target.Artifacts) {
			n.Phase, n.NextArtifact = PhaseVerifying, 0
		}
	case EvFail:
		if !s.Phase.preSwitch() {
			return invalid()
		}
		n.Phase, n.Target, n.NextArtifact, n.Reason = PhaseFailed, nil, 0, e.Reason
	case EvVerified:
		if s.Phase != PhaseVerifying {
			return invalid()
		}
		n.Phase, n.Attempts = PhaseActivating, 0
	case EvActivated:
		if s.Phase != PhaseActivating {
			return invalid()
		}
		n.Phase = PhaseChecking
	case EvChecksPassed:
		if s.Phase != PhaseChecking {
			return invalid()
		}
		n.Phase = PhaseCommitting
	case EvCommitted:
		if s.Phase != PhaseCommitting {
			return invalid()
		}
		m.commit(&n)
	case EvRollback:
		if !s.Phase.Unconfirmed() {
			return invalid()
		}
		n.Phase, n.RollbackTo, n.Reason = PhaseRollingBack, nil, e.Reason
	case EvRolledBack:
		if s.Phase != PhaseRollingBack || !rolledBack(&n) {
			return invalid()
		}
	case EvManualRollback:
		if !s.Phase.Resting() {
			return s, fmt.Errorf("rollback to version %d: %w (phase %s)", e.To, ErrBusy, s.Phase)
		}
		if e.To < s.Floor {
			return s, fmt.Errorf("rollback to version %d: %w %d (set by a committed manifest's min_version)", e.To, ErrBelowFloor, s.Floor)
		}
		i := slices.IndexFunc(s.Kept, func(r Release) bool { return r.Version == e.To })
		if i < 0 {
			return s, fmt.Errorf("rollback to version %d: %w (kept: %v)", e.To, ErrNotKept, keptVersions(s.Kept))
		}
		to := s.Kept[i]
		n.Phase, n.RollbackTo = PhaseRollingBack, &to
		n.Reason = fmt.Sprintf("rolled back from version %d to %d by an operator", s.Current.Version, e.To)
	case EvRetired:
		i := slices.IndexFunc(s.Retiring, func(r Release) bool { return r.Version == e.Version })
		if i < 0 {
			return invalid()
		}
		n.Retiring = slices.Delete(n.Retiring, i, i+1)
	default:
		return invalid()
	}
	n.Transitions++
	if len(n.Retiring) == 0 {
		n.Retiring = nil
	}
	if len(n.Kept) == 0 {
		n.Kept = nil
	}
	return n, nil
}

// newer applies an accepted or refused manifest newer than Highest.
func (m machine) newer(n *State, ev Event) error {
	switch e := ev.(type) {
	case EvAccept:
		if e.Target.Version <= n.Highest {
			return fmt.Errorf("accept version %d: %w (highest %d)", e.Target.Version, ErrNotNewer, n.Highest)
		}
		t := e.Target
		n.Target = &t
		n.Highest, n.HighestDigest = t.Version, t.Digest
		n.Phase, n.NextArtifact, n.Attempts, n.Reason, n.Refused, n.RollbackTo = PhaseDownloading, 0, 0, "", nil, nil
	case EvRefuse:
		// Refusing does not raise Highest: once the cause is fixed (the
		// allow-list, the disk) the same manifest is admitted.
		if e.Refusal.Version <= n.Highest {
			return fmt.Errorf("refuse version %d: %w (highest %d)", e.Refusal.Version, ErrNotNewer, n.Highest)
		}
		r := e.Refusal
		n.Phase, n.Target, n.NextArtifact, n.Reason, n.Refused = PhaseFailed, nil, 0, r.Reason, &r
	}
	return nil
}

// commit makes the target current; the old current is kept, and what
// falls off the end of Kept, or below the floor the target's min_version
// sets, retires.
func (m machine) commit(n *State) {
	n.Floor = max(n.Floor, n.Target.MinVersion)
	n.Kept = append([]Release{n.Current}, n.Kept...)
	if len(n.Kept) > m.keep {
		n.Retiring = append(n.Retiring, n.Kept[m.keep:]...)
		n.Kept = n.Kept[:m.keep:m.keep]
	}
	if i := slices.IndexFunc(n.Kept, func(r Release) bool { return r.Version < n.Floor }); i >= 0 {
		n.Retiring = append(n.Retiring, n.Kept[i:]...)
		n.Kept = n.Kept[:i:i]
	}
	n.Current = n.Target.Release
	n.Phase, n.Target, n.Attempts, n.Reason = PhaseActive, nil, 0, ""
}

// rolledBack ends a rollback. An automatic one leaves Current as it was
// and retires the target. A manual one makes the chosen kept release
// current; it and every release newer than it leave Kept, and the old
// current retires. It reports false for a manual target no longer kept.
func rolledBack(n *State) bool {
	if n.RollbackTo != nil {
		to := n.RollbackTo.Version
		i := slices.IndexFunc(n.Kept, func(r Release) bool { return r.Version == to })
		if i < 0 {
			return false
		}
		n.Retiring = append(n.Retiring, n.Current)
		n.Retiring = append(n.Retiring, n.Kept[:i]...)
		n.Current = n.Kept[i]
		n.Kept = slices.Clone(n.Kept[i+1:])
	} else if n.Target != nil {
		n.Retiring = append(n.Retiring, n.Target.Release)
	}
	n.Phase, n.Target, n.RollbackTo, n.Attempts = PhaseRolledBack, nil, nil, 0
	return true
}

func keptVersions(rs []Release) []int64 {
	out := make([]int64, len(rs))
	for i, r := range rs {
		out[i] = r.Version
	}
	return out
}

// cloneState copies s deeply enough that next never writes into s.
func cloneState(s State) State {
	n := s
	n.Kept = slices.Clone(s.Kept)
	n.Retiring = slices.Clone(s.Retiring)
	if s.Target != nil {
		t := *s.Target
		t.KeyIDs = slices.Clone(s.Target.KeyIDs)
		n.Target = &t
	}
	if s.RollbackTo != nil {
		r := *s.RollbackTo
		n.RollbackTo = &r
	}
	if s.Refused != nil {
		r := *s.Refused
		n.Refused = &r
	}
	return n
}
