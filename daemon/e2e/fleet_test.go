package e2e_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ember-edge/ember/daemon/synth"
	"github.com/ember-edge/ember/internal/testkit"
	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
)

// The operator's side of a fleet update, done with emberctl as an
// operator would: keys, a manifest, its signature, a retained publish.
type operator struct {
	t     *testing.T
	dir   string
	mq    *testkit.Mosquitto
	fleet string
	// The artifacts, served by a static file server with faults.
	files *faultyFiles
	model []byte
}

func newOperator(t *testing.T, fleet string) *operator {
	o := &operator{t: t, dir: t.TempDir(), mq: testkit.StartMosquitto(t), fleet: fleet, files: newFaultyFiles(t)}
	o.run("fleet", "keygen", "--out", filepath.Join(o.dir, "keys"))
	// A second model: the tiny shape with other weights.
	spec := synth.Tiny
	spec.Seed = 2
	data, err := os.ReadFile(testkit.WriteModel(t, spec))
	if err != nil {
		t.Fatal(err)
	}
	o.model = data
	o.files.put("/models/tiny-v2.gguf", data)
	o.files.put("/pipelines/line3.yaml", []byte(`pipelines:
  - name: line3-alarms
    match: plant/line3/+/alarm
    prompt: "Alarm {{.code}}"
    max_tokens: 4
`))
	return o
}

func (o *operator) run(args ...string) string {
	o.t.Helper()
	d := &emberd{t: o.t, socket: filepath.Join(o.dir, "none.sock")}
	out, errOut, err := d.ctl(args...)
	if err != nil {
		o.t.Fatalf("emberctl %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// release signs and publishes version with the given checks (YAML list
// items) as the fleet's desired state.
func (o *operator) release(version int, checks string) {
	o.t.Helper()
	bundle := o.files.get("/pipelines/line3.yaml")
	manifest := fmt.Sprintf(`version: %d
artifacts:
  - kind: model
    name: tiny-v2
    url: %s/models/tiny-v2.gguf
    sha256: %x
    size: %d
    license: apache-2.0
  - kind: pipelines
    name: line3
    url: %s/pipelines/line3.yaml
    sha256: %x
    size: %d
checks:
%s`, version, o.files.srv.URL, sha256Sum(o.model), len(o.model), o.files.srv.URL, sha256Sum(bundle), len(bundle), checks)
	yaml := filepath.Join(o.dir, fmt.Sprintf("release-%d.yaml", version))
	env := filepath.Join(o.dir, fmt.Sprintf("release-%d.json", version))
	if err := os.WriteFile(yaml, []byte(manifest), 0o644); err != nil {
		o.t.Fatal(err)
	}
	o.run("fleet", "sign", "--fleet", o.fleet, "--key", filepath.Join(o.dir, "keys", "fleet.key"), "--manifest", yaml, "--out", env)
	o.run("fleet", "publish", "--url", o.mq.URL(), "--fleet", o.fleet, env)
}

// deviceConfig is the uplink and fleet sections of a device that trusts
// the operator's key.
func (o *operator) deviceConfig() string {
	return fmt.Sprintf(`uplink:
  url: %s
  fleet: %s
  backoff: {min: 100ms, max: 500ms}
fleet:
  trusted_keys: [%s]
`, o.mq.URL(), o.fleet, filepath.Join(o.dir, "keys", "fleet.pub"))
}

// updateStatus is `emberctl update status -o json`.
type updateStatus struct {
	Phase         string `json:"phase"`
	ActiveVersion int64  `json:"active_version"`
	TargetVersion int64  `json:"target_version"`
	Percent       float64
	Reason        string `json:"reason"`
	LastError     string `json:"last_error"`
}

func (d *emberd) updateStatus() updateStatus {
	d.t.Helper()
	out, errOut, err := d.ctl("-o", "json", "update", "status")
	if err != nil {
		d.t.Fatalf("update status: %v\n%s", err, errOut)
	}
	var st updateStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		d.t.Fatalf("update status -o json: %v\n%s", err, out)
	}
	return st
}

// model is one entry of `emberctl models ls -o json`.
type model struct {
	Name, Path, SHA256, License, Version, Source string
	Default, Loaded                              bool
}

func (d *emberd) models() map[string]model {
	d.t.Helper()
	out, errOut, err := d.ctl("-o", "json", "models", "ls")
	if err != nil {
		d.t.Fatalf("models ls: %v\n%s", err, errOut)
	}
	var resp struct{ Models []model }
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		d.t.Fatalf("models ls -o json: %v\n%s", err, out)
	}
	byName := map[string]model{}
	for _, m := range resp.Models {
		byName[m.Name] = m
	}
	return byName
}

// waitPhase waits until the update reaches one of the final phases.
func (d *emberd) waitPhase(timeout time.Duration, phases ...string) updateStatus {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := d.updateStatus()
		for _, p := range phases {
			if st.Phase == p {
				return st
			}
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("update still %+v after %v, want phase %v", st, timeout, phases)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// slowChecks are post-update checks that pass and take a while on the
// tiny model, so that a kill can land while they run.
const slowChecks = `  - prompt: "The pump on line 3 reports"
    max_tokens: 400
    not_contains: ["<never written>"]
  - prompt: "Valve 7 is"
    max_tokens: 400
    not_contains: ["<never written>"]
  - prompt: "Shift report:"
    max_tokens: 400
    not_contains: ["<never written>"]
`

// killWhen SIGKILLs emberd once the update is in one of phases (or has
// ended), polling fast; it returns the phase seen last before the kill.
func (d *emberd) killWhen(timeout time.Duration, phases ...string) string {
	d.t.Helper()
	updates := emberv1.NewUpdateServiceClient(d.grpc())
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := updates.Status(ctx, &emberv1.UpdateStatusRequest{})
		cancel()
		if err == nil && (slices.Contains(phases, st.Phase) || st.Phase == "active" || st.Phase == "rolled_back" || st.Phase == "failed") {
			d.kill()
			return st.Phase
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("update not in %v within %v (%v, %v)", phases, timeout, st, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestFleetUpdateSurvivesSIGKILL publishes a signed release (a model and
// a pipelines bundle, with post-update checks) that emberd downloads
// from a slow file server which cuts a third of its responses; emberd is
// SIGKILLed at random moments of the download, then as soon as it
// verifies or activates, then while it runs the checks, and restarted
// each time. Every time it comes back it serves a complete, verified
// release (the config's, or the new one), and after the last restart it
// ends on the new one: the model under its name with the manifest's
// version, sha256 and license, the bundle's pipeline installed, the
// download resumed rather than restarted.
func TestFleetUpdateSurvivesSIGKILL(t *testing.T) {
	rng := rand.New(rand.NewPCG(crashSeed, 5))
	op := newOperator(t, "plant-a")
	d := newEmberd(t, daemonConfig{Extra: op.deviceConfig()})
	op.release(1, slowChecks)
	var seen []string
	// Two kills after the switch: fleet.max_boot_attempts (3) more would
	// roll the release back, which TestFleetUpdateCrashLoopRollsBack checks.
	for k, when := range []string{"random", "random", "random", "verifying", "checking"} {
		switch when {
		case "random":
			time.Sleep(time.Duration(300+rng.IntN(1500)) * time.Millisecond)
			seen = append(seen, d.updateStatus().Phase)
			d.kill()
		case "verifying":
			seen = append(seen, d.killWhen(30*time.Second, "verifying", "activating", "checking", "committing"))
		case "checking":
			seen = append(seen, d.killWhen(30*time.Second, "checking", "committing"))
		}
		d.start()
		// Whatever it was doing, what it serves is whole.
		ms := d.models()
		if m, ok := ms["tiny"]; !ok || !m.Default {
			t.Fatalf("after kill %d the config's default model is gone: %+v", k+1, ms)
		}
		if m, ok := ms["tiny-v2"]; ok {
			if m.SHA256 != fmt.Sprintf("%x", sha256Sum(op.model)) || testkit.SHA256File(t, m.Path) != m.SHA256 {
				t.Fatalf("after kill %d tiny-v2 is registered but not the verified file: %+v", k+1, m)
			}
		}
	}
	st := d.waitPhase(60*time.Second, "active", "rolled_back", "failed")
	t.Logf("phases at the kills: %v; %d requests to the file server, %d cut, %d with a Range", seen,
		op.files.requests(), op.files.cuts(), op.files.ranged())
	if st.Phase != "active" || st.ActiveVersion != 1 {
		t.Fatalf("update ended %+v, want active version 1", st)
	}
	if op.files.ranged() == 0 {
		t.Error("no download resumed with a Range request")
	}
	m, ok := d.models()["tiny-v2"]
	if !ok || m.Version != "1" || m.License != "apache-2.0" || m.SHA256 != fmt.Sprintf("%x", sha256Sum(op.model)) || !m.Loaded {
		t.Fatalf("tiny-v2 after the update: %+v (ok %v)", m, ok)
	}
	if data, err := os.ReadFile(m.Path); err != nil || !bytes.Equal(data, op.model) {
		t.Fatalf("tiny-v2's file is not the published one (%v)", err)
	}
	if out, errOut, err := d.ctl("generate", "--model", "tiny-v2", "--max-tokens", "2", "hello"); err != nil {
		t.Fatalf("generate with the new model: %v\n%s%s", err, out, errOut)
	}
	out, _, err := d.ctl("pipelines", "ls")
	if err != nil || !strings.Contains(out, "line3-alarms") {
		t.Fatalf("the bundle's pipeline is not installed (%v):\n%s", err, out)
	}
}

// TestFleetUpdateCrashLoopRollsBack kills emberd every time it runs the
// new release's checks, as a model that crashes the process would: after
// fleet.max_boot_attempts restarts the device goes back to the config's
// model by itself and says why.
func TestFleetUpdateCrashLoopRollsBack(t *testing.T) {
	op := newOperator(t, "plant-c")
	op.files.noFaults()
	d := newEmberd(t, daemonConfig{Extra: op.deviceConfig()})
	op.release(1, slowChecks)
	var st updateStatus
	for k := 0; ; k++ {
		if phase := d.killWhen(60*time.Second, "checking"); phase != "checking" {
			t.Fatalf("kill %d: the update was %q, not checking", k+1, phase)
		}
		d.start()
		if st = d.updateStatus(); st.Phase == "rolled_back" || st.Phase == "rolling_back" || k == 5 {
			break
		}
	}
	st = d.waitPhase(30*time.Second, "active", "rolled_back", "failed")
	if st.Phase != "rolled_back" || st.ActiveVersion != 0 || st.Reason == "" {
		t.Fatalf("after the crash loop the update is %+v, want rolled_back to version 0 with a reason", st)
	}
	t.Logf("rolled back: %s", st.Reason)
	if _, ok := d.models()["tiny-v2"]; ok {
		t.Fatal("the crash-looping model is still registered")
	}
	if out, errOut, err := d.ctl("generate", "--max-tokens", "2", "hello"); err != nil {
		t.Fatalf("generate after the rollback: %v\n%s%s", err, out, errOut)
	}
}

// TestFleetUpdateFailingItsChecksRollsBack publishes a release whose model
// cannot pass its check: emberd rolls back to the config's model by
// itself, says why, and keeps serving.
func TestFleetUpdateFailingItsChecksRollsBack(t *testing.T) {
	op := newOperator(t, "plant-b")
	op.files.noFaults()
	d := newEmberd(t, daemonConfig{Extra: op.deviceConfig()})
	op.release(1, `  - prompt: "The pump on line 3 reports"
    max_tokens: 4
    contains: ["a phrase random weights never write"]
`)
	st := d.waitPhase(60*time.Second, "active", "rolled_back", "failed")
	if st.Phase != "rolled_back" || st.ActiveVersion != 0 || !strings.Contains(st.Reason+st.LastError, "a phrase random weights never write") {
		t.Fatalf("update ended %+v, want rolled_back to version 0 naming the failed check", st)
	}
	ms := d.models()
	if _, ok := ms["tiny-v2"]; ok {
		t.Fatalf("the rolled-back model is still registered: %+v", ms)
	}
	if out, errOut, err := d.ctl("generate", "--max-tokens", "2", "hello"); err != nil {
		t.Fatalf("generate after the rollback: %v\n%s%s", err, out, errOut)
	}
	// It stays rolled back across a restart: the same manifest is not
	// tried again.
	d.kill()
	d.start()
	time.Sleep(time.Second)
	if st := d.updateStatus(); st.Phase != "rolled_back" || st.ActiveVersion != 0 {
		t.Fatalf("after a restart the update is %+v, want still rolled_back", st)
	}
}

// faultyFiles is a static file server with Range support that sends at
// about 200 KB/s and cuts a third of the responses at a random offset.
type faultyFiles struct {
	srv *httptest.Server

	mu                 sync.Mutex
	files              map[string][]byte
	rng                *rand.Rand
	faults             bool
	nReq, nCut, nRange int
}

func newFaultyFiles(t *testing.T) *faultyFiles {
	f := &faultyFiles{files: map[string][]byte{}, rng: rand.New(rand.NewPCG(crashSeed, 6)), faults: true}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *faultyFiles) put(path string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[path] = data
}

func (f *faultyFiles) get(path string) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.files[path]
}

func (f *faultyFiles) noFaults() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = false
}

func (f *faultyFiles) requests() int { f.mu.Lock(); defer f.mu.Unlock(); return f.nReq }
func (f *faultyFiles) cuts() int     { f.mu.Lock(); defer f.mu.Unlock(); return f.nCut }
func (f *faultyFiles) ranged() int   { f.mu.Lock(); defer f.mu.Unlock(); return f.nRange }

func (f *faultyFiles) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	data, ok := f.files[r.URL.Path]
	f.nReq++
	if r.Header.Get("Range") != "" {
		f.nRange++
	}
	cut := -1
	if f.faults && f.rng.IntN(3) == 0 {
		cut = f.rng.IntN(max(len(data), 1))
		f.nCut++
	}
	f.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	http.ServeContent(&slowWriter{ResponseWriter: w, cut: cut}, r, "", time.Time{}, bytes.NewReader(data))
}

// slowWriter paces a response and aborts it after cut bytes (cut < 0:
// never).
type slowWriter struct {
	http.ResponseWriter
	cut, sent int
}

func (s *slowWriter) Write(p []byte) (int, error) {
	const chunk = 8 << 10
	n := 0
	for len(p) > 0 {
		c := min(len(p), chunk)
		if s.cut >= 0 && s.sent+c > s.cut {
			s.ResponseWriter.Write(p[:s.cut-s.sent])
			s.ResponseWriter.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // the connection drops mid-body
		}
		w, err := s.ResponseWriter.Write(p[:c])
		n += w
		s.sent += w
		if err != nil {
			return n, err
		}
		s.ResponseWriter.(http.Flusher).Flush()
		p = p[c:]
		time.Sleep(40 * time.Millisecond)
	}
	return n, nil
}

func sha256Sum(data []byte) [32]byte { return sha256.Sum256(data) }

// A fleet bundle may not turn a pipeline the device's config classifies
// local into a shared one: the release is refused while it is staged,
// with the reason in `emberctl update status`, and the local pipeline
// stays as it was.
func TestFleetBundleCannotDeclassifyALocalPipeline(t *testing.T) {
	op := newOperator(t, "plant-c")
	op.files.noFaults()
	op.files.put("/pipelines/line3.yaml", []byte(`pipelines:
  - name: line3-alarms
    match: plant/line3/+/alarm
    classification: shared
    prompt: "Alarm {{.code}}"
    max_tokens: 4
`))
	d := newEmberd(t, daemonConfig{Extra: op.deviceConfig() + `pipelines:
  - {name: line3-alarms, match: "plant/line3/+/alarm", classification: local, prompt: "Alarm {{.code}}", max_tokens: 4}
`})
	op.release(1, "  []\n")
	st := d.waitPhase(60*time.Second, "active", "rolled_back", "failed")
	if st.Phase == "active" || st.ActiveVersion != 0 || !strings.Contains(st.Reason+st.LastError, "cannot make a local pipeline shared") {
		t.Fatalf("update ended %+v, want it refused naming the declassification", st)
	}
	out, errOut, err := d.ctl("-o", "json", "pipelines", "ls")
	if err != nil || !strings.Contains(out, `"local"`) {
		t.Fatalf("pipelines after the refused release: %v\n%s%s", err, out, errOut)
	}
}
