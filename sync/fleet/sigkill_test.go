package fleet

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ember-edge/ember/daemon/store"
)

// These tests kill a real process with SIGKILL at random moments and
// start it again on the same files: no deferred function runs, no buffer
// is flushed, only what was written before the signal exists.

const childEnv = "FLEET_SIGKILL_CHILD"

// TestSIGKILLChild is the child process's body; run directly it does
// nothing.
func TestSIGKILLChild(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		return
	}
	var err error
	switch mode, arg, _ := strings.Cut(spec, ":"); mode {
	case "fetch":
		err = childFetch(arg)
	case "update":
		err = childUpdate(arg)
	default:
		err = fmt.Errorf("unknown child mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	os.Exit(0)
}

func childFetch(arg string) error {
	parts := strings.SplitN(arg, "|", 3)
	size, _ := strconv.ParseInt(parts[1], 10, 64)
	opts := fastDownload()
	opts.RateLimit = 1 << 20
	opts.CheckpointBytes = 64 << 10
	return NewDownloader(opts).Fetch(context.Background(), parts[0], size, parts[2])
}

// runChild starts the test binary as a child in mode; it returns the
// command and a channel with its exit.
func runChild(t *testing.T, spec string) (*exec.Cmd, chan error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSIGKILLChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+spec)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		if err != nil && stderr.Len() > 0 {
			err = fmt.Errorf("%w: %s", err, stderr.String())
		}
		done <- err
	}()
	return cmd, done
}

// killLoop runs the child until it exits by itself, SIGKILLing it at a
// random moment of each life before that, and calls check after each
// kill. It returns the number of kills.
func killLoop(t *testing.T, spec string, seed uint64, maxLife time.Duration, maxKills int, check func(life int)) int {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	for life := 0; ; life++ {
		cmd, done := runChild(t, spec)
		// The child needs a moment to start (a -race binary more so).
		wait := 150*time.Millisecond + time.Duration(rng.Int64N(int64(maxLife)))
		if life >= maxKills {
			wait = time.Minute // enough kills: let it finish
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("child life %d: %v", life, err)
			}
			return life
		case <-time.After(wait):
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
			check(life)
		}
	}
}

func TestFetchSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	content := randomBytes(11, 2<<20+17)
	srv := newArtServer(t)
	url := srv.put("/m.gguf", content)
	path := filepath.Join(t.TempDir(), "m.part")
	spec := fmt.Sprintf("fetch:%s|%d|%s", url, len(content), path)
	kills := killLoop(t, spec, 7, 400*time.Millisecond, 15, func(int) {})
	assertFile(t, path, content)
	resumed := 0
	for _, r := range srv.log() {
		if r.Range != "" {
			resumed++
		}
	}
	t.Logf("%d kills, %d requests, %d resumed with a Range", kills, len(srv.log()), resumed)
	if kills > 0 && resumed == 0 {
		t.Error("no download resumed with a Range after a kill")
	}
}

// fileActivator keeps the daemon's side in a JSON file replaced
// atomically, so it survives SIGKILL as the daemon's own record would.
type fileActivator struct {
	path string
	mu   sync.Mutex
}

type activatorRecord struct {
	Active     Release  `json:"active"`
	Serving    bool     `json:"serving"`
	Violations []string `json:"violations,omitempty"`
}

func (a *fileActivator) load() activatorRecord {
	var r activatorRecord
	if b, err := os.ReadFile(a.path); err == nil {
		json.Unmarshal(b, &r)
	}
	return r
}

func (a *fileActivator) save(r activatorRecord) error {
	b, _ := json.Marshal(r)
	return writeFile(a.path, b, 0o600)
}

func (a *fileActivator) update(f func(r *activatorRecord)) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.load()
	f(&r)
	return a.save(r)
}

func (a *fileActivator) Activate(_ context.Context, rel Release) error {
	return a.update(func(r *activatorRecord) {
		if err := releaseComplete(rel); err != nil {
			r.Violations = append(r.Violations, fmt.Sprintf("activate %d: %v", rel.Version, err))
		}
		r.Active, r.Serving = rel, false
	})
}

func (a *fileActivator) Commit(_ context.Context, rel Release) error {
	return a.update(func(r *activatorRecord) { r.Serving = true })
}

func (a *fileActivator) Rollback(_ context.Context, to Release) error {
	return a.update(func(r *activatorRecord) { r.Active, r.Serving = to, true })
}

func (a *fileActivator) Retire(_ context.Context, rel Release) error {
	return a.update(func(r *activatorRecord) {
		if rel.Version == r.Active.Version {
			r.Violations = append(r.Violations, fmt.Sprintf("retire the active %d", rel.Version))
		}
	})
}

type passChecker struct{}

func (passChecker) Run(context.Context, Release, Check) (CheckResult, error) {
	return CheckResult{Output: "check the pump", TokensPerSecond: 30}, nil
}

// retainedLink delivers one retained envelope and accepts reports.
type retainedLink struct{ topic, envelope string }

func (l retainedLink) Subscribe(topic string, h func([]byte)) error {
	if topic == l.topic {
		b, err := os.ReadFile(l.envelope)
		if err != nil {
			return err
		}
		go h(b)
	}
	return nil
}
func (retainedLink) Publish(string, []byte, bool) error { return nil }
func (retainedLink) Notify(fn func(bool))               { go fn(true) }

// childUpdate runs an updater on dir until version want is active and
// tidied up, then exits.
func childUpdate(arg string) error {
	dir, wantS, _ := strings.Cut(arg, "|")
	want, _ := strconv.ParseInt(wantS, 10, 64)
	st, err := store.Open(filepath.Join(dir, "ember.db"), store.Options{LockTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	pubKey, err := os.ReadFile(filepath.Join(dir, "fleet.pub"))
	if err != nil {
		return err
	}
	ring := NewKeyRing(ed25519.PublicKey(pubKey))
	opts := Options{
		Fleet: testFleet, Device: testDevice, Dir: filepath.Join(dir, "fleet"), Keys: ring,
		Store:     SettingsStore(st, store.ErrNotFound),
		Link:      retainedLink{FleetDesiredTopic(testFleet), filepath.Join(dir, "envelope.json")},
		Activator: &fileActivator{path: filepath.Join(dir, "activator.json")}, Checker: passChecker{},
		Hardware: Hardware{MemoryBytes: 8 << 30}, KeepVersions: 1,
		Download: fastDownload(), Logger: slog.New(slog.DiscardHandler),
	}
	opts.Download.RateLimit = 1 << 20
	opts.Download.CheckpointBytes = 64 << 10
	u, err := New(opts)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	for {
		select {
		case err := <-done:
			return fmt.Errorf("Run returned %v", err)
		case <-time.After(5 * time.Millisecond):
		}
		s := u.Status()
		if s.Phase == PhaseActive && s.ActiveVersion == want {
			data, _ := st.Setting(keyState)
			if ds, err := decodeState(data); err == nil && len(ds.Retiring) == 0 {
				cancel()
				<-done
				return st.Close()
			}
		}
	}
}

// TestUpdaterSurvivesSIGKILL updates a device from version 1 to version 2
// (a 1.5 MiB model at 1 MiB/s, so kills land in every phase) in a child
// process killed at random moments. After every kill the daemon's record
// names a complete release, the database is sound, and the last life
// ends on version 2.
func TestUpdaterSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	dir := t.TempDir()
	key := testKey(5)
	if err := os.WriteFile(filepath.Join(dir, "fleet.pub"), pub(key), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := newArtServer(t)
	content := func(seed uint64, n int) Artifact {
		b := randomBytes(seed, n)
		return modelArtifact(fmt.Sprintf("m%d", seed), srv.put(fmt.Sprintf("/%d", seed), b), b)
	}
	writeEnvelope := func(m *Manifest) {
		m.Fleet, m.NotAfter = testFleet, Timestamp{time.Now().Add(24 * time.Hour).Truncate(time.Second)}
		if err := os.WriteFile(filepath.Join(dir, "envelope.json"), mustSign(t, m, key), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	act := &fileActivator{path: filepath.Join(dir, "activator.json")}
	check := func(life int) {
		rec := act.load()
		if len(rec.Violations) > 0 {
			t.Fatalf("after kill %d: %v", life, rec.Violations)
		}
		if err := releaseComplete(rec.Active); err != nil {
			t.Fatalf("after kill %d the daemon's record names version %d with a broken file: %v", life, rec.Active.Version, err)
		}
		st, err := store.Open(filepath.Join(dir, "ember.db"), store.Options{})
		if err != nil {
			t.Fatalf("after kill %d: %v", life, err)
		}
		defer st.Close()
		if err := st.Check(); err != nil {
			t.Fatalf("after kill %d the database is damaged: %v", life, err)
		}
	}

	writeEnvelope(&Manifest{Version: 1, Artifacts: []Artifact{content(1, 256<<10)}})
	killLoop(t, "update:"+dir+"|1", 1, 500*time.Millisecond, 4, check)
	writeEnvelope(&Manifest{Version: 2, Artifacts: []Artifact{content(2, 3<<19)},
		Checks: []Check{{Prompt: "pump?", MaxTokens: 8, Contains: Strings{"pump"}}}})
	kills := killLoop(t, "update:"+dir+"|2", 2, 1500*time.Millisecond, 10, check)
	rec := act.load()
	if rec.Active.Version != 2 || !rec.Serving {
		t.Fatalf("after %d kills the daemon runs %d (serving %v), want 2", kills, rec.Active.Version, rec.Serving)
	}
	check(kills)
	t.Logf("version 2 installed through %d kills", kills)
}
