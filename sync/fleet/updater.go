package fleet

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/ember-edge/ember/daemon/jsonschema"
)

// Link is the MQTT connection, as the uplink package provides it. The
// updater never sees a broker or a client library.
type Link interface {
	// Subscribe registers handler for topic. The link keeps the
	// subscription across reconnects and delivers retained messages on
	// each (re)subscription. handler must not block for long; the updater
	// only stores the payload and wakes its goroutine.
	Subscribe(topic string, handler func(payload []byte)) error
	// Publish sends payload on topic, QoS 1. It returns an error when the
	// link is down rather than waiting for it; the updater publishes again
	// when Notify reports the link up.
	Publish(topic string, payload []byte, retain bool) error
	// Notify registers fn, called with true each time the link comes up
	// and with false when it drops. fn does not block.
	Notify(fn func(up bool))
}

// Activator is the daemon's side of an update. The updater decides when;
// the Activator does the switching. Every method may be called again with
// the same argument after a restart (the updater redoes the step it had
// persisted) and must then succeed without harm: the methods are
// idempotent.
type Activator interface {
	// Activate switches the daemon to rel in one atomic step (one
	// committed record naming rel's files). From then on the daemon runs
	// rel, after a restart too, but routes no requests to it until
	// Commit. rel's files are complete and fsynced when it is called.
	Activate(ctx context.Context, rel Release) error
	// Commit opens rel to traffic: it passed its checks.
	Commit(ctx context.Context, rel Release) error
	// Rollback switches the daemon back to to, an earlier release, in one
	// step, and serves it. Version 0 (no artifacts) means what the daemon
	// runs from its own config. It may be called from Boot, before the
	// daemon has loaded any model.
	Rollback(ctx context.Context, to Release) error
	// Retire tells the daemon that rel is leaving the device: once it
	// returns nil, rel's files are deleted unless a kept release shares
	// them.
	Retire(ctx context.Context, rel Release) error
}

// Checker runs a post-update check's prompt.
type Checker interface {
	// Run generates from c.Prompt, at most c.MaxTokens tokens, greedily,
	// on the model c.Model of rel (empty: rel's only model, else the
	// daemon's default) while rel takes no traffic. An error fails the
	// check, unless ctx has ended.
	Run(ctx context.Context, rel Release, c Check) (CheckResult, error)
}

// CheckResult is what a check's generation produced; engine.Result's
// TimeToFirstToken and TokensPerSecond() fill the timings.
type CheckResult struct {
	Output            string
	TokensPerSecond   float64
	FirstTokenLatency time.Duration
}

// SchemaValidator validates a document against a compiled JSON Schema.
type SchemaValidator interface {
	Validate(data []byte) error
}

// SchemaCompiler compiles a JSON Schema (daemon/jsonschema's Compile,
// wrapped).
type SchemaCompiler func(schema []byte) (SchemaValidator, error)

// Hardware is what the device has, for artifacts' requirements.
type Hardware struct {
	// MemoryBytes is the RAM (hw.Profile.MemoryBytes).
	MemoryBytes uint64
	// Arch is the Go architecture name; empty is runtime.GOARCH.
	Arch string
}

// Options configure an Updater. Fleet, Device, Dir, Keys, Store, Link,
// Activator, Checker and Hardware.MemoryBytes are required.
type Options struct {
	// Fleet and Device name the topics: fleet/v1/<Fleet>/desired and
	// fleet/v1/<Fleet>/<Device>/{desired,reported}.
	Fleet, Device string
	// Dir holds downloaded artifacts (Dir/artifacts, named by sha256) and
	// partial downloads (Dir/partial); the updater owns it.
	Dir string
	// Keys are the trusted manifest signing keys (fleet.trusted_keys),
	// until a key list signed by RootKey replaces them.
	Keys *KeyRing
	// RootKey, when set, is the fleet's pinned root key
	// (fleet.root_key): the updater then follows the key list retained
	// on fleet/v1/<Fleet>/keys, signed by it, whose keys replace Keys.
	RootKey ed25519.PublicKey
	// Watermark is the file, outside the database, that keeps the
	// highest accepted version, the floor and the key list (see
	// watermark); default Dir/watermark.json.
	Watermark string
	// MaxVersionJump is how far above the highest accepted version a
	// manifest signed by one key may go; one further needs signatures by
	// two different trusted keys. Default 1000.
	MaxVersionJump int64
	// AllowHTTP accepts plain-http artifact URLs to any host
	// (fleet.require_https: false). Without it only https, or http to a
	// loopback host, is accepted, and no download is redirected to
	// another host or from https to http either way.
	AllowHTTP bool
	// Store keeps the state; it must be durable when Put returns.
	Store     StateStore
	Link      Link
	Activator Activator
	Checker   Checker
	// Schema compiles json_schema expectations; nil is
	// daemon/jsonschema's Compile. A schema it refuses (an unsupported
	// keyword) refuses the manifest before any download.
	Schema   SchemaCompiler
	Hardware Hardware
	// AllowedLicenses, when not empty, is the only licenses a model
	// artifact may have (compared case-insensitively); others are refused
	// before any download.
	AllowedLicenses []string
	// KeepVersions is how many earlier releases stay on disk for
	// rollback; default 2.
	KeepVersions int
	// MaxBootAttempts is how many restarts an unconfirmed update
	// survives; the next one rolls it back. Default 3.
	MaxBootAttempts int
	// CheckTimeout bounds each post-update check; default 5m.
	CheckTimeout time.Duration
	// Auditor, when set, records the automatic activations, commits and
	// rollbacks (AuditActivate, AuditCommit, AuditRollback); daemon/audit's
	// *Log is one.
	Auditor Auditor
	// Download tunes the artifact downloads (rate limit, window, timeouts).
	Download DownloadOptions
	// DiskFree returns the bytes free for an unprivileged writer in dir;
	// nil uses statfs.
	DiskFree func(dir string) (int64, error)
	// ReportInterval is the least time between progress reports while
	// downloading; default 10s.
	ReportInterval time.Duration
	// Clock drives reports and retries; nil is the system clock.
	Clock  Clock
	Logger *slog.Logger

	// hook, in tests, is called at every persistence point and before and
	// after every side effect; an error (errCrashed) stops the updater on
	// the spot, as a power cut would.
	hook func(point string) error
}

// Updater applies signed desired-state manifests: it downloads, verifies,
// activates, checks, and commits or rolls back, persisting its phase
// before each side effect. One goroutine (Run's) owns the state; Status
// and Rollback may be called from any goroutine.
type Updater struct {
	opts    Options
	m       machine
	dl      *Downloader
	log     *slog.Logger
	clock   Clock
	topics  topics
	crashed bool // set by the hook; guarded by hookMu
	hookMu  sync.Mutex

	booted bool
	st     State // owned by Boot, then by Run's goroutine
	// wm is the watermark as written; keys the manifest keys in force
	// (Options.Keys, or the held key list's). Owned like st.
	wm   watermark
	keys *KeyRing

	mu       sync.Mutex // guards what follows
	status   Status
	inbox    map[string][]byte // latest payload per desired topic
	inboxNew bool
	online   bool
	linkNew  bool

	wake     chan struct{}
	requests chan rollbackRequest
}

type rollbackRequest struct {
	to    int64
	reply chan error
}

// New checks opts and returns an Updater. It touches nothing; Boot (or
// Run) reads the state.
func New(opts Options) (*Updater, error) {
	var errs []error
	need := func(ok bool, what string) {
		if !ok {
			errs = append(errs, fmt.Errorf("fleet: %s is required", what))
		}
	}
	need(opts.Fleet != "", "Fleet")
	need(opts.Device != "", "Device")
	need(opts.Dir != "", "Dir")
	need(opts.Keys.Len() > 0 || opts.RootKey != nil, "at least one trusted key (or a root key)")
	if opts.RootKey != nil && len(opts.RootKey) != ed25519.PublicKeySize {
		errs = append(errs, fmt.Errorf("fleet: RootKey is %d bytes, want %d", len(opts.RootKey), ed25519.PublicKeySize))
	}
	if opts.RootKey != nil && opts.Keys != nil {
		if _, dup := opts.Keys.Key(KeyID(opts.RootKey)); dup {
			errs = append(errs, errors.New("fleet: the root key is also a trusted manifest key: keep it for key lists only"))
		}
	}
	need(opts.Store != nil, "Store")
	need(opts.Link != nil, "Link")
	need(opts.Activator != nil, "Activator")
	need(opts.Checker != nil, "Checker")
	need(opts.Hardware.MemoryBytes > 0, "Hardware.MemoryBytes (for min_memory requirements)")
	for _, name := range []string{opts.Fleet, opts.Device} {
		if name != "" {
			if err := CheckName(name); err != nil {
				errs = append(errs, fmt.Errorf("fleet: %w", err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if opts.KeepVersions <= 0 {
		opts.KeepVersions = 2
	}
	if opts.Watermark == "" {
		opts.Watermark = filepath.Join(opts.Dir, "watermark.json")
	}
	if opts.MaxVersionJump <= 0 {
		opts.MaxVersionJump = 1000
	}
	opts.Download.AllowHTTP = opts.AllowHTTP
	if opts.MaxBootAttempts <= 0 {
		opts.MaxBootAttempts = 3
	}
	if opts.CheckTimeout <= 0 {
		opts.CheckTimeout = 5 * time.Minute
	}
	if opts.ReportInterval <= 0 {
		opts.ReportInterval = 10 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = SystemClock
	}
	if opts.Download.Clock == nil {
		opts.Download.Clock = opts.Clock
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Download.Logger == nil {
		opts.Download.Logger = opts.Logger
	}
	if opts.Hardware.Arch == "" {
		opts.Hardware.Arch = runtime.GOARCH
	}
	if opts.DiskFree == nil {
		opts.DiskFree = diskFree
	}
	if opts.Schema == nil {
		opts.Schema = func(schema []byte) (SchemaValidator, error) { return jsonschema.Compile(schema) }
	}
	u := &Updater{
		opts:     opts,
		m:        machine{keep: opts.KeepVersions, maxAttempts: opts.MaxBootAttempts},
		log:      opts.Logger,
		clock:    opts.Clock,
		topics:   newTopics(opts.Fleet, opts.Device),
		keys:     opts.Keys,
		inbox:    map[string][]byte{},
		wake:     make(chan struct{}, 1),
		requests: make(chan rollbackRequest),
	}
	u.dl = NewDownloader(opts.Download)
	u.dl.hook = u.point
	return u, nil
}

// point is a persistence point or the edge of a side effect. In tests the
// hook may declare a crash there; from then on every point fails, so no
// further side effect happens.
func (u *Updater) point(name string) error {
	if u.opts.hook == nil {
		return nil
	}
	u.hookMu.Lock()
	defer u.hookMu.Unlock()
	if u.crashed {
		return errCrashed
	}
	if err := u.opts.hook(name); err != nil {
		u.crashed = true
		return err
	}
	return nil
}

// Boot reads the state and counts this start. Call it before the daemon
// loads its models: when an unconfirmed update has now restarted more
// than MaxBootAttempts times, Boot rolls it back (Activator.Rollback)
// before returning, so the daemon loads the previous release instead of
// crashing again. Run calls Boot if it has not been called.
func (u *Updater) Boot(ctx context.Context) error {
	if u.booted {
		return nil
	}
	for _, sub := range []string{"artifacts", "partial"} {
		if err := os.MkdirAll(filepath.Join(u.opts.Dir, sub), 0o750); err != nil {
			return fmt.Errorf("fleet: %w", err)
		}
	}
	st, err := u.load()
	if err != nil {
		return err
	}
	if st, err = u.loadWatermark(st); err != nil {
		return err
	}
	u.st = st
	if err := u.apply(EvStart{}); err != nil {
		return err
	}
	u.updateStatus(func(s *Status) { s.fromState(u.st) })
	u.booted = true
	if u.st.Phase == PhaseRollingBack {
		// Roll back now, before the daemon loads the release that keeps
		// crashing it. If this fails, Run keeps trying.
		if err := u.rollback(ctx, u.st); err != nil {
			return fmt.Errorf("fleet: roll back at boot: %w", err)
		}
		if err := u.apply(EvRolledBack{}); err != nil {
			return err
		}
	}
	return nil
}

// load returns the stored state, or the initial one.
func (u *Updater) load() (State, error) {
	st, err := ReadState(u.opts.Store)
	if err != nil {
		return State{}, fmt.Errorf("fleet: %w", err)
	}
	return st, nil
}

// apply runs the transition function and persists the result before
// anything acts on it. An event that does not apply is logged and
// dropped.
func (u *Updater) apply(ev Event) error {
	from := u.st
	n, err := u.m.next(from, ev)
	if err != nil {
		u.log.Warn("fleet: event ignored", "event", ev.eventName(), "err", err)
		return nil
	}
	if n.Transitions == from.Transitions {
		return nil // no change
	}
	data, err := encodeState(n)
	if err != nil {
		return fmt.Errorf("fleet: encode state: %w", err)
	}
	// The watermark first: it must never be behind the database.
	if wm, raised := u.wm.raise(n); raised {
		if err := writeWatermark(u.opts.Watermark, wm); err != nil {
			return fmt.Errorf("fleet: %w", err)
		}
		u.wm = wm
	}
	if err := u.opts.Store.Put(keyState, data); err != nil {
		return fmt.Errorf("fleet: persist state: %w", err)
	}
	u.st = n
	u.log.Info("fleet: transition", "event", ev.eventName(), "from", from.Phase, "to", n.Phase,
		"transition", n.Transitions, "target", targetVersion(n), "reason", n.Reason)
	u.updateStatus(func(s *Status) { s.fromState(n) })
	u.audit(from, n, ev)
	return u.point("persist:" + ev.eventName())
}

func targetVersion(s State) int64 {
	if s.Target != nil {
		return s.Target.Version
	}
	return 0
}

// Run is the updater's service loop, supervised by the daemon: it returns
// nil when ctx ends and an error when its store fails (a restart of Run is
// counted as a start, as a restart of the daemon is). It waits for the
// side effect in flight to stop before returning. One Run at a time.
func (u *Updater) Run(ctx context.Context) error {
	if err := u.Boot(ctx); err != nil {
		if !u.booted || errors.Is(err, errCrashed) {
			return err
		}
		u.log.Warn("fleet: boot step failed; retrying in Run", "err", err)
	}
	r := &runner{u: u, report: true}
	return r.loop(ctx)
}

// Status returns a snapshot of the updater's state for UpdateService.Status
// and the reported topic. With no error of its own to show, LastError
// shows why retained payloads are ignored (Ignored), so that `emberctl
// update status` says it while the payload stays.
func (u *Updater) Status() Status {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.status.clone()
	if s.LastError == "" && len(s.Ignored) > 0 {
		s.LastError = strings.Join(s.Ignored, "; ")
	}
	return s
}

func (u *Updater) updateStatus(f func(*Status)) {
	u.mu.Lock()
	f(&u.status)
	u.mu.Unlock()
}

// Rollback returns the device to the kept release of version to (what
// `emberctl models rollback` asks for) and waits until the switch is done.
// It fails with ErrBusy while an update is in progress and ErrNotKept for
// a version the device does not keep. Run must be running.
func (u *Updater) Rollback(ctx context.Context, to int64) error {
	req := rollbackRequest{to: to, reply: make(chan error, 1)}
	select {
	case u.requests <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// deliver stores a desired payload from the link and wakes Run.
func (u *Updater) deliver(topic string, payload []byte) {
	u.mu.Lock()
	u.inbox[topic] = append([]byte(nil), payload...)
	u.inboxNew = true
	u.mu.Unlock()
	u.poke()
}

func (u *Updater) linkChanged(up bool) {
	u.mu.Lock()
	u.online, u.linkNew = up, true
	u.mu.Unlock()
	u.poke()
}

func (u *Updater) poke() {
	select {
	case u.wake <- struct{}{}:
	default:
	}
}
