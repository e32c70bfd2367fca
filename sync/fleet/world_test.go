package fleet

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ember-edge/ember/daemon/store"
)

// fakeLink is an MQTT link with retained messages, a switch to take it
// down, and a record of what was published. It delivers on one goroutine
// of its own, in order, as a client library does.
type fakeLink struct {
	mu        sync.Mutex
	retained  map[string][]byte
	handlers  map[string][]func([]byte)
	notify    []func(bool)
	down      bool
	published []string // topics, in order
	queue     chan func()
}

func newFakeLink(t *testing.T) *fakeLink {
	l := &fakeLink{retained: map[string][]byte{}, handlers: map[string][]func([]byte){}, queue: make(chan func(), 1024)}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case f := <-l.queue:
				f()
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	return l
}

// deliver queues a call; the caller holds l.mu.
func (l *fakeLink) deliver(f func()) { l.queue <- f }

func (l *fakeLink) Subscribe(topic string, h func([]byte)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.handlers[topic] = append(l.handlers[topic], h)
	if p, ok := l.retained[topic]; ok && !l.down {
		l.deliver(func() { h(p) })
	}
	return nil
}

func (l *fakeLink) Publish(topic string, payload []byte, retain bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		return errors.New("link down")
	}
	if retain {
		l.retained[topic] = payload
	}
	l.published = append(l.published, topic)
	return nil
}

func (l *fakeLink) Notify(fn func(bool)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.notify = append(l.notify, fn)
	up := !l.down
	l.deliver(func() { fn(up) })
}

// operator retains payload on topic, as `emberctl fleet publish` does.
func (l *fakeLink) operator(topic string, payload []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(payload) == 0 {
		delete(l.retained, topic)
	} else {
		l.retained[topic] = payload
	}
	if l.down {
		return
	}
	for _, h := range l.handlers[topic] {
		l.deliver(func() { h(payload) })
	}
}

// setDown takes the link down or brings it back; on the way up the
// broker delivers retained messages again, as on a resubscription.
func (l *fakeLink) setDown(down bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down = down
	for _, fn := range l.notify {
		l.deliver(func() { fn(!down) })
	}
	if !down {
		for topic, hs := range l.handlers {
			if p, ok := l.retained[topic]; ok {
				for _, h := range hs {
					l.deliver(func() { h(p) })
				}
			}
		}
	}
}

// forget drops handlers and notifications: the updater that set them is
// gone (a new one subscribes again).
func (l *fakeLink) forget() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.handlers = map[string][]func([]byte){}
	l.notify = nil
}

func (l *fakeLink) report(t testing.TB, fleet, device string) (Report, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, ok := l.retained[ReportedTopic(fleet, device)]
	if !ok {
		return Report{}, false
	}
	var r Report
	if err := json.Unmarshal(p, &r); err != nil {
		t.Fatalf("reported payload %s: %v", p, err)
	}
	return r, true
}

// fakeActivator is the daemon's side, with its own "durable" record (it
// survives a simulated crash, as the daemon's bbolt record would) and
// checks of what the updater must never do.
type fakeActivator struct {
	mu          sync.Mutex
	active      Release
	serving     bool
	checked     map[int64]int // checks run against a version since its activation
	wantChecks  map[int64]int
	calls       []string
	violations  []string
	activateErr error
	commitErr   error
	rollbackErr int   // fail this many Rollback calls
	retireErr   error // fail every Retire
}

func newFakeActivator() *fakeActivator {
	return &fakeActivator{serving: true, checked: map[int64]int{}, wantChecks: map[int64]int{}}
}

func (a *fakeActivator) violate(format string, args ...any) {
	a.violations = append(a.violations, fmt.Sprintf(format, args...))
}

func (a *fakeActivator) Activate(_ context.Context, rel Release) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, fmt.Sprintf("activate %d", rel.Version))
	if err := releaseComplete(rel); err != nil {
		a.violate("activate %d with an incomplete file: %v", rel.Version, err)
	}
	if a.activateErr != nil {
		return a.activateErr
	}
	a.active, a.serving = rel, false
	a.checked[rel.Version] = 0
	return nil
}

func (a *fakeActivator) Commit(_ context.Context, rel Release) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, fmt.Sprintf("commit %d", rel.Version))
	if a.active.Version != rel.Version {
		a.violate("commit %d while %d is active", rel.Version, a.active.Version)
	}
	if a.checked[rel.Version] < a.wantChecks[rel.Version] {
		a.violate("commit %d after %d of its %d checks", rel.Version, a.checked[rel.Version], a.wantChecks[rel.Version])
	}
	if a.commitErr != nil {
		return a.commitErr
	}
	a.serving = true
	return nil
}

func (a *fakeActivator) Rollback(_ context.Context, to Release) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, fmt.Sprintf("rollback %d", to.Version))
	if a.rollbackErr > 0 {
		a.rollbackErr--
		return errInjected
	}
	if err := releaseComplete(to); err != nil {
		a.violate("roll back to %d with an incomplete file: %v", to.Version, err)
	}
	a.active, a.serving = to, true
	return nil
}

func (a *fakeActivator) Retire(_ context.Context, rel Release) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, fmt.Sprintf("retire %d", rel.Version))
	if rel.Version == a.active.Version {
		a.violate("retire %d, the active release", rel.Version)
	}
	return a.retireErr
}

func (a *fakeActivator) state() (Release, bool, []string, []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.active, a.serving, slices.Clone(a.calls), slices.Clone(a.violations)
}

// releaseComplete checks every file of rel is there with its sha256.
func releaseComplete(rel Release) error {
	for _, a := range rel.Artifacts {
		if err := checkFile(context.Background(), a.Path, a.Size, a.SHA256); err != nil {
			return err
		}
	}
	return nil
}

// fakeChecker answers checks with what respond says.
type fakeChecker struct {
	act     *fakeActivator
	respond func(ctx context.Context, rel Release, c Check) (CheckResult, error)
}

func (c *fakeChecker) Run(ctx context.Context, rel Release, ch Check) (CheckResult, error) {
	c.act.mu.Lock()
	if c.act.active.Version != rel.Version {
		c.act.violate("check %d while %d is active", rel.Version, c.act.active.Version)
	}
	if c.act.serving {
		c.act.violate("check %d while it takes traffic", rel.Version)
	}
	c.act.checked[rel.Version]++
	c.act.mu.Unlock()
	if c.respond != nil {
		return c.respond(ctx, rel, ch)
	}
	return CheckResult{Output: "ok: check the pump", TokensPerSecond: 50, FirstTokenLatency: 20 * time.Millisecond}, nil
}

// world is one device: a state dir with a real bbolt store, the fakes,
// and an artifact server.
type world struct {
	t      *testing.T
	dir    string
	dbPath string
	st     *store.Store
	link   *fakeLink
	act    *fakeActivator
	chk    *fakeChecker
	srv    *artServer
	aud    *fakeAuditor
	key    ed25519.PrivateKey
	opts   func(*Options) // adjusts the options of every updater
}

const (
	testFleet  = "line3"
	testDevice = "gw-07"
)

func newWorld(t *testing.T) *world {
	w := &world{t: t, dir: t.TempDir(), link: newFakeLink(t), act: newFakeActivator(), srv: newArtServer(t), aud: &fakeAuditor{}, key: testKey(1)}
	w.chk = &fakeChecker{act: w.act}
	w.dbPath = filepath.Join(w.dir, "ember.db")
	w.openStore()
	t.Cleanup(func() {
		if w.st != nil {
			if err := w.st.Check(); err != nil {
				t.Errorf("store consistency: %v", err)
			}
			w.st.Close()
		}
	})
	return w
}

func (w *world) openStore() {
	st, err := store.Open(w.dbPath, store.Options{})
	if err != nil {
		w.t.Fatal(err)
	}
	w.st = st
}

// reopenStore closes and reopens the database, as a restarted daemon
// does: only committed writes survive.
func (w *world) reopenStore() {
	w.st.Close()
	w.openStore()
}

func (w *world) options() Options {
	o := Options{
		Fleet: testFleet, Device: testDevice, Dir: filepath.Join(w.dir, "fleet"),
		Keys: NewKeyRing(pub(w.key)), Store: SettingsStore(w.st, store.ErrNotFound),
		Link: w.link, Activator: w.act, Checker: w.chk, Auditor: w.aud,
		Hardware: Hardware{MemoryBytes: 8 << 30, Arch: "arm64"},
		Download: fastDownload(), ReportInterval: 20 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
	}
	if testing.Verbose() && os.Getenv("FLEET_LOG") != "" {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if w.opts != nil {
		w.opts(&o)
	}
	return o
}

// running is an updater whose Run is in a goroutine.
type running struct {
	u      *Updater
	cancel context.CancelFunc
	done   chan error
}

func (w *world) start(o Options) *running {
	w.t.Helper()
	u, err := New(o)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{u: u, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- u.Run(ctx) }()
	return r
}

// stop ends Run and returns its error; the link forgets its handlers.
func (r *running) stop(w *world) error {
	r.cancel()
	var err error
	select {
	case err = <-r.done:
	case <-time.After(20 * time.Second):
		w.t.Fatal("Run did not return")
	}
	w.link.forget()
	return err
}

func (r *running) waitPhase(t *testing.T, want ...Phase) Status {
	t.Helper()
	var s Status
	eventually(t, fmt.Sprintf("phase %v", want), 20*time.Second, func() bool {
		select {
		case err := <-r.done:
			r.done <- err
			t.Fatalf("Run returned %v while waiting for %v (status %+v)", err, want, r.u.Status())
		default:
		}
		s = r.u.Status()
		return slices.Contains(want, s.Phase)
	})
	return s
}

// release builds a manifest of version v whose artifacts the world's
// server serves, one per name, content seeded by seed.
func (w *world) manifest(v int64, seed uint64, names ...string) *Manifest {
	m := &Manifest{Fleet: testFleet, NotAfter: Timestamp{time.Now().Add(24 * time.Hour).Truncate(time.Second)}, Version: v}
	for i, n := range names {
		content := randomBytes(seed+uint64(i), 40<<10+int(seed))
		url := w.srv.put(fmt.Sprintf("/%d/%s", v, n), content)
		kind := KindModel
		if strings.HasPrefix(n, "pipe") {
			kind = KindPipelines
		}
		a := modelArtifact(n, url, content)
		a.Kind = kind
		m.Artifacts = append(m.Artifacts, a)
	}
	return m
}

func (w *world) publish(topic string, m *Manifest) {
	w.act.mu.Lock()
	w.act.wantChecks[m.Version] = len(m.Checks)
	w.act.mu.Unlock()
	w.link.operator(topic, mustSign(w.t, m, w.key))
}

func (w *world) noViolations() {
	w.t.Helper()
	if _, _, _, v := w.act.state(); len(v) > 0 {
		w.t.Fatalf("the updater did what it must not:\n  %s", strings.Join(v, "\n  "))
	}
}

// storedState reads the state record as the next start would.
func (w *world) storedState() State {
	w.t.Helper()
	data, err := w.st.Setting(keyState)
	if err != nil {
		w.t.Fatal(err)
	}
	s, err := decodeState(data)
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

// files lists a subdirectory of the updater's dir.
func (w *world) files(sub string) []string {
	entries, _ := os.ReadDir(filepath.Join(w.dir, "fleet", sub))
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}
