package fleet

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	fleetTopic  = FleetDesiredTopic(testFleet)
	deviceTopic = DeviceDesiredTopic(testFleet, testDevice)
)

func TestUpdateHappyPath(t *testing.T) {
	w := newWorld(t)
	r := w.start(w.options())
	defer r.stop(w)

	m1 := w.manifest(1, 10, "qwen", "pipes")
	m1.Checks = []Check{{Prompt: "p", MaxTokens: 8, Contains: Strings{"pump"}, MinTokensPerSecond: 5}}
	w.publish(fleetTopic, m1)
	s := r.waitPhase(t, PhaseActive)
	if s.ActiveVersion != 1 || s.HighestVersion != 1 || len(s.Artifacts) != 2 || !slices.Equal(s.KeptVersions, []int64{0}) {
		t.Errorf("status %+v", s)
	}
	active, serving, calls, _ := w.act.state()
	if active.Version != 1 || !serving {
		t.Errorf("daemon runs %d (serving %v), want 1", active.Version, serving)
	}
	if want := []string{"activate 1", "commit 1"}; !slices.Equal(calls, want) {
		t.Errorf("activator calls %q, want %q", calls, want)
	}
	w.noViolations()
	eventually(t, "the report", 5*time.Second, func() bool {
		rep, ok := w.link.report(t, testFleet, testDevice)
		return ok && rep.Phase == PhaseActive && rep.ActiveVersion == 1
	})
	eventually(t, "partial downloads swept", 5*time.Second, func() bool { return len(w.files("partial")) == 0 })

	// A second release sharing the pipelines file fetches only the model.
	m2 := w.manifest(2, 20, "qwen")
	m2.Artifacts = append(m2.Artifacts, m1.Artifacts[1])
	before := len(w.srv.log())
	w.publish(fleetTopic, m2)
	r.waitPhase(t, PhaseActive)
	eventually(t, "version 2", 5*time.Second, func() bool { return r.u.Status().ActiveVersion == 2 })
	if got := len(w.srv.log()) - before; got != 1 {
		t.Errorf("%d requests for version 2, want 1 (the shared file is on disk)", got)
	}
	if s := r.u.Status(); !slices.Equal(s.KeptVersions, []int64{1, 0}) {
		t.Errorf("kept %v", s.KeptVersions)
	}
	w.noViolations()
}

func TestDeviceManifestWinsOverTheFleets(t *testing.T) {
	w := newWorld(t)
	w.publish(fleetTopic, w.manifest(1, 1, "qwen"))
	w.publish(deviceTopic, w.manifest(5, 2, "qwen"))
	r := w.start(w.options())
	defer r.stop(w)
	r.waitPhase(t, PhaseActive)
	if s := r.u.Status(); s.ActiveVersion != 5 {
		t.Fatalf("active %d, want the device's 5", s.ActiveVersion)
	}
	// A newer fleet manifest does not apply while the device has its own.
	w.publish(fleetTopic, w.manifest(6, 3, "qwen"))
	time.Sleep(100 * time.Millisecond)
	if s := r.u.Status(); s.ActiveVersion != 5 || s.Phase != PhaseActive {
		t.Fatalf("status %+v after a fleet manifest, want version 5 still", s)
	}
	// Clearing the device's retained message hands it back to the fleet.
	w.link.operator(deviceTopic, nil)
	eventually(t, "the fleet's version 6", 10*time.Second, func() bool {
		s := r.u.Status()
		return s.ActiveVersion == 6 && s.Phase == PhaseActive
	})
	w.noViolations()
}

func TestFailingCheckRollsBack(t *testing.T) {
	w := newWorld(t)
	w.chk.respond = func(_ context.Context, rel Release, c Check) (CheckResult, error) {
		return CheckResult{Output: "I cannot help with valves", TokensPerSecond: 40}, nil
	}
	r := w.start(w.options())
	defer r.stop(w)
	m := w.manifest(1, 1, "qwen")
	m.Checks = []Check{{Prompt: "pump?", MaxTokens: 8, Contains: Strings{"pump"}}}
	w.publish(fleetTopic, m)
	s := r.waitPhase(t, PhaseRolledBack)
	if s.ActiveVersion != 0 || !strings.Contains(s.Reason, ErrCheckFailed.Error()) || !strings.Contains(s.Reason, `"pump"`) {
		t.Errorf("status %+v", s)
	}
	active, serving, _, _ := w.act.state()
	if active.Version != 0 || !serving {
		t.Errorf("daemon runs %d (serving %v), want the baseline", active.Version, serving)
	}
	want := []string{"activate 1", "rollback 0", "retire 1"}
	eventually(t, "version 1 retired", 5*time.Second, func() bool {
		_, _, calls, _ := w.act.state()
		return slices.Equal(calls, want)
	})
	w.noViolations()
	eventually(t, "version 1's files deleted", 5*time.Second, func() bool { return len(w.files("artifacts")) == 0 })
	eventually(t, "the report", 5*time.Second, func() bool {
		rep, ok := w.link.report(t, testFleet, testDevice)
		return ok && rep.Phase == PhaseRolledBack && strings.Contains(rep.Reason, "pump")
	})
	// The same manifest, delivered again, is not retried.
	w.link.setDown(true)
	w.link.setDown(false)
	time.Sleep(100 * time.Millisecond)
	if _, _, calls, _ := w.act.state(); len(calls) != 3 {
		t.Errorf("rolled-back manifest retried: %q", calls)
	}
}

func TestCheckerErrorAndActivationErrorRollBack(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(w *world)
		want  string
	}{
		{"checker error", func(w *world) {
			w.chk.respond = func(context.Context, Release, Check) (CheckResult, error) {
				return CheckResult{}, errors.New("model failed to load")
			}
		}, "model failed to load"},
		{"activate error", func(w *world) { w.act.activateErr = errors.New("no such model") }, "activate version 1: no such model"},
		{"commit error", func(w *world) { w.act.commitErr = errors.New("registry full") }, "commit version 1: registry full"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			tc.setup(w)
			r := w.start(w.options())
			defer r.stop(w)
			m := w.manifest(1, 1, "qwen")
			m.Checks = []Check{{Prompt: "p", MaxTokens: 4}}
			w.publish(fleetTopic, m)
			s := r.waitPhase(t, PhaseRolledBack)
			if !strings.Contains(s.Reason, tc.want) {
				t.Errorf("reason %q, want %q", s.Reason, tc.want)
			}
			if active, serving, _, _ := w.act.state(); active.Version != 0 || !serving {
				t.Errorf("daemon runs %d serving %v", active.Version, serving)
			}
		})
	}
}

// TestCrashLoopRollsBackAtBoot: the new version crashes the daemon
// while it is being checked. Each start counts; the one past the limit
// rolls back in Boot, before the daemon would load the bad model again.
func TestCrashLoopRollsBackAtBoot(t *testing.T) {
	w := newWorld(t)
	hang := make(chan struct{})
	defer close(hang)
	w.chk.respond = func(ctx context.Context, _ Release, _ Check) (CheckResult, error) {
		select { // the daemon dies during the check
		case <-hang:
		case <-ctx.Done():
		}
		return CheckResult{}, errors.New("killed")
	}
	m := w.manifest(1, 1, "qwen")
	m.Checks = []Check{{Prompt: "p", MaxTokens: 4}}
	w.publish(fleetTopic, m)
	o := w.options()
	o.MaxBootAttempts = 3
	r := w.start(o)
	r.waitPhase(t, PhaseChecking)
	r.stop(w) // killed: nothing is persisted on the way down
	for i := 1; i <= 3; i++ {
		w.reopenStore()
		o = w.options()
		o.MaxBootAttempts = 3
		r = w.start(o)
		s := r.waitPhase(t, PhaseChecking)
		if s.BootAttempts != i {
			t.Fatalf("start %d: attempts %d", i, s.BootAttempts)
		}
		r.stop(w)
	}
	w.reopenStore()
	o = w.options()
	o.MaxBootAttempts = 3
	u, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Boot(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Rolled back by Boot alone, before Run.
	if active, serving, _, _ := w.act.state(); active.Version != 0 || !serving {
		t.Fatalf("after Boot the daemon runs %d (serving %v)", active.Version, serving)
	}
	s := u.Status()
	if s.Phase != PhaseRolledBack || !strings.Contains(s.Reason, ErrCrashLoop.Error()) {
		t.Fatalf("status %+v", s)
	}
	w.noViolations()
}

func TestRefusedBeforeDownload(t *testing.T) {
	cases := []struct {
		name   string
		adjust func(o *Options, m *Manifest)
		want   error
	}{
		{"license not allowed", func(o *Options, m *Manifest) { o.AllowedLicenses = []string{"MIT", "bsd-3-clause"} }, ErrLicense},
		{"not enough memory", func(o *Options, m *Manifest) { m.Artifacts[0].Requires.MinMemory = 16 << 30 }, ErrRequirements},
		{"wrong architecture", func(o *Options, m *Manifest) { m.Artifacts[0].Requires.Arch = []string{"amd64"} }, ErrRequirements},
		{"no space", func(o *Options, m *Manifest) {
			o.DiskFree = func(string) (int64, error) { return 1000, nil }
		}, ErrNoSpace},
		{"unsupported json schema", func(o *Options, m *Manifest) {
			m.Checks = []Check{{Prompt: "p", MaxTokens: 4, JSONSchema: RawJSON(`{"oneOf":[{"type":"string"}]}`)}}
		}, ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			o := w.options()
			m := w.manifest(1, 1, "qwen")
			tc.adjust(&o, m)
			r := w.start(o)
			defer r.stop(w)
			w.publish(fleetTopic, m)
			s := r.waitPhase(t, PhaseFailed)
			if !strings.Contains(s.Reason, tc.want.Error()) || s.ActiveVersion != 0 {
				t.Errorf("status %+v, want reason %q", s, tc.want)
			}
			if n := len(w.srv.log()); n != 0 {
				t.Errorf("%d download requests for a refused manifest", n)
			}
			before := w.storedState().Transitions
			w.link.setDown(true)
			w.link.setDown(false) // the retained manifest comes again
			time.Sleep(100 * time.Millisecond)
			if after := w.storedState().Transitions; after != before {
				t.Errorf("the same refusal was recorded again (%d → %d transitions)", before, after)
			}
		})
	}
}

func TestLicenseAllowedAfterRefusal(t *testing.T) {
	w := newWorld(t)
	o := w.options()
	o.AllowedLicenses = []string{"mit"}
	r := w.start(o)
	defer r.stop(w)
	w.publish(fleetTopic, w.manifest(1, 1, "qwen")) // apache-2.0
	r.waitPhase(t, PhaseFailed)
	m := w.manifest(2, 2, "qwen")
	m.Artifacts[0].License = "MIT"
	w.publish(fleetTopic, m)
	eventually(t, "version 2", 10*time.Second, func() bool { return r.u.Status().ActiveVersion == 2 })
}

func TestDownloadFailuresKeepTheOldVersion(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(w *world, m *Manifest)
		want   error
	}{
		{"404", func(w *world, m *Manifest) { m.Artifacts[0].URL = w.srv.URL + "/gone" }, ErrRemoteNotFound},
		{"wrong bytes", func(w *world, m *Manifest) {
			content := randomBytes(99, int(m.Artifacts[0].Size)) // same size, other bytes
			w.srv.put("/1/qwen", content)
		}, ErrDigestMismatch},
		{"server file is another size", func(w *world, m *Manifest) { w.srv.put("/1/qwen", []byte("short")) }, ErrSizeMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			r := w.start(w.options())
			defer r.stop(w)
			m := w.manifest(1, 1, "qwen")
			tc.break_(w, m)
			w.publish(fleetTopic, m)
			s := r.waitPhase(t, PhaseFailed)
			if !strings.Contains(s.Reason, tc.want.Error()) || s.ActiveVersion != 0 {
				t.Errorf("status %+v, want %v", s, tc.want)
			}
			if _, _, calls, _ := w.act.state(); len(calls) != 0 {
				t.Errorf("activator called: %q", calls)
			}
			eventually(t, "partial files swept", 5*time.Second, func() bool {
				return len(w.files("partial")) == 0 && len(w.files("artifacts")) == 0
			})
		})
	}
}

func TestManualRollback(t *testing.T) {
	w := newWorld(t)
	r := w.start(w.options())
	defer r.stop(w)
	for v := int64(1); v <= 3; v++ {
		w.publish(fleetTopic, w.manifest(v, uint64(v*10), "qwen"))
		eventually(t, "the new version", 10*time.Second, func() bool {
			s := r.u.Status()
			return s.ActiveVersion == v && s.Phase == PhaseActive
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if s := r.u.Status(); !slices.Equal(s.KeptVersions, []int64{2, 1}) {
		t.Fatalf("kept %v, want [2 1]", s.KeptVersions)
	}
	if err := r.u.Rollback(ctx, 0); !errors.Is(err, ErrNotKept) {
		t.Errorf("rollback to 0 (not kept with KeepVersions 2): %v", err)
	}
	if err := r.u.Rollback(ctx, 2); err != nil {
		t.Fatal(err)
	}
	s := r.u.Status()
	if s.Phase != PhaseRolledBack || s.ActiveVersion != 2 || !strings.Contains(s.Reason, "by an operator") || !slices.Equal(s.KeptVersions, []int64{1}) {
		t.Errorf("status %+v", s)
	}
	if active, serving, _, _ := w.act.state(); active.Version != 2 || !serving {
		t.Errorf("daemon runs %d", active.Version)
	}
	// Version 3 stays refused: it was accepted once.
	w.link.setDown(true)
	w.link.setDown(false)
	time.Sleep(100 * time.Millisecond)
	if s := r.u.Status(); s.ActiveVersion != 2 {
		t.Errorf("version 3 came back after a manual rollback: %+v", s)
	}
	// While a download runs, no rollback.
	w.srv.setPlan(func(n int, req *http.Request) serveMode { return serveMode{stallAfter: 100} })
	w.publish(fleetTopic, w.manifest(4, 40, "qwen"))
	r.waitPhase(t, PhaseDownloading)
	if err := r.u.Rollback(ctx, 1); !errors.Is(err, ErrBusy) {
		t.Errorf("rollback during a download: %v", err)
	}
	w.noViolations()
}

func TestReplayAndDowngradeRefusedAcrossRestarts(t *testing.T) {
	w := newWorld(t)
	r := w.start(w.options())
	v1 := mustSign(t, w.manifest(1, 1, "qwen"), w.key)
	w.link.operator(fleetTopic, v1)
	r.waitPhase(t, PhaseActive)
	w.publish(fleetTopic, w.manifest(2, 2, "qwen"))
	eventually(t, "version 2", 10*time.Second, func() bool { return r.u.Status().ActiveVersion == 2 })
	r.stop(w)

	w.reopenStore()
	r = w.start(w.options())
	defer r.stop(w)
	w.link.operator(fleetTopic, v1) // an attacker replays the old signed manifest
	eventually(t, "the replay refused", 5*time.Second, func() bool {
		return strings.Contains(r.u.Status().LastError, "older than 2")
	})
	other := w.manifest(2, 77, "qwen") // version 2 again, other content
	w.publish(fleetTopic, other)
	eventually(t, "the substitution refused", 5*time.Second, func() bool {
		return strings.Contains(r.u.Status().LastError, "already accepted with other content")
	})
	if s := r.u.Status(); s.ActiveVersion != 2 || s.Phase != PhaseActive {
		t.Errorf("status %+v", s)
	}
	eventually(t, "the refusal reported", 5*time.Second, func() bool {
		rep, ok := w.link.report(t, testFleet, testDevice)
		return ok && strings.Contains(rep.LastError, ErrNotNewer.Error())
	})
}

func TestBadSignatureIsReportedAndIgnored(t *testing.T) {
	w := newWorld(t)
	r := w.start(w.options())
	defer r.stop(w)
	w.link.operator(fleetTopic, mustSign(t, w.manifest(1, 1, "qwen"), testKey(9)))
	eventually(t, "the refusal", 5*time.Second, func() bool {
		return strings.Contains(r.u.Status().LastError, ErrUnknownKey.Error())
	})
	w.link.operator(fleetTopic, []byte("not json"))
	eventually(t, "the refusal", 5*time.Second, func() bool {
		return strings.Contains(r.u.Status().LastError, ErrMalformed.Error())
	})
	if s := r.u.Status(); s.Phase != PhaseIdle || len(w.srv.log()) != 0 {
		t.Errorf("status %+v after bad manifests", s)
	}
}

// TestOfflineDevice: the link drops right after the manifest arrives.
// The update goes on (the artifact server is reachable), reports fail,
// and the device reports when it is back. A restart while offline still
// knows the desired state, from the store.
func TestOfflineDevice(t *testing.T) {
	w := newWorld(t)
	w.srv.setPlan(func(n int, r *http.Request) serveMode {
		if n == 0 {
			return serveMode{cutAfter: 10 << 10}
		}
		return serveMode{}
	})
	r := w.start(w.options())
	w.publish(fleetTopic, w.manifest(1, 1, "qwen"))
	r.waitPhase(t, PhaseDownloading, PhaseVerifying, PhaseActivating, PhaseChecking, PhaseCommitting, PhaseActive)
	w.link.setDown(true)
	r.stop(w) // power cut while offline

	w.reopenStore()
	r = w.start(w.options())
	defer r.stop(w)
	r.waitPhase(t, PhaseActive)
	if rep, ok := w.link.report(t, testFleet, testDevice); ok && rep.Phase == PhaseActive {
		t.Fatal("reported while offline")
	}
	w.link.setDown(false)
	eventually(t, "the report after reconnecting", 5*time.Second, func() bool {
		rep, ok := w.link.report(t, testFleet, testDevice)
		return ok && rep.Phase == PhaseActive && rep.ActiveVersion == 1 && rep.Device == testDevice
	})
}

func TestNewerManifestReplacesADownload(t *testing.T) {
	w := newWorld(t)
	w.srv.setPlan(func(n int, r *http.Request) serveMode {
		if strings.HasPrefix(r.URL.Path, "/1/") {
			return serveMode{stallAfter: 1000}
		}
		return serveMode{}
	})
	o := w.options()
	o.Download.StallTimeout = time.Minute
	r := w.start(o)
	defer r.stop(w)
	w.publish(fleetTopic, w.manifest(1, 1, "qwen"))
	eventually(t, "the download started", 5*time.Second, func() bool { return r.u.Status().BytesDone > 0 })
	w.publish(fleetTopic, w.manifest(2, 2, "qwen"))
	r.waitPhase(t, PhaseActive)
	if s := r.u.Status(); s.ActiveVersion != 2 {
		t.Fatalf("status %+v", s)
	}
	if _, _, calls, _ := w.act.state(); !slices.Equal(calls, []string{"activate 2", "commit 2"}) {
		t.Errorf("calls %q", calls)
	}
}

func TestProgressIsReported(t *testing.T) {
	w := newWorld(t)
	w.srv.setPlan(func(n int, r *http.Request) serveMode { return serveMode{stallAfter: 20 << 10} })
	o := w.options()
	o.Download.StallTimeout = time.Minute
	r := w.start(o)
	defer r.stop(w)
	m := w.manifest(1, 1, "qwen")
	w.publish(fleetTopic, m)
	eventually(t, "a progress report", 5*time.Second, func() bool {
		rep, ok := w.link.report(t, testFleet, testDevice)
		return ok && rep.Phase == PhaseDownloading && rep.BytesDone == 20<<10 && rep.BytesTotal == m.Artifacts[0].Size &&
			rep.Percent > 40 && rep.Percent < 50 && rep.TargetVersion == 1
	})
}

func TestRetireDeletesOnlyUnsharedFiles(t *testing.T) {
	w := newWorld(t)
	w.opts = func(o *Options) { o.KeepVersions = 1 }
	r := w.start(w.options())
	defer r.stop(w)
	m1 := w.manifest(1, 1, "qwen", "pipes")
	w.publish(fleetTopic, m1)
	r.waitPhase(t, PhaseActive)
	m2 := w.manifest(2, 2, "qwen")
	m2.Artifacts = append(m2.Artifacts, m1.Artifacts[1]) // shares the pipelines
	w.publish(fleetTopic, m2)
	eventually(t, "version 2", 10*time.Second, func() bool { return r.u.Status().ActiveVersion == 2 })
	w.publish(fleetTopic, w.manifest(3, 3, "qwen"))
	eventually(t, "version 3, version 1 retired", 10*time.Second, func() bool {
		_, _, calls, _ := w.act.state()
		return r.u.Status().ActiveVersion == 3 && slices.Contains(calls, "retire 1") && len(w.storedState().Retiring) == 0
	})
	// Kept: version 2 (its qwen and the shared pipelines); current: 3.
	eventually(t, "three files left", 5*time.Second, func() bool { return len(w.files("artifacts")) == 3 })
	st := w.storedState()
	for _, rel := range append([]Release{st.Current}, st.Kept...) {
		if err := releaseComplete(rel); err != nil {
			t.Errorf("release %d lost a file: %v", rel.Version, err)
		}
	}
	w.noViolations()
}

func TestNewRefusesIncompleteOptions(t *testing.T) {
	_, err := New(Options{Fleet: "a b"})
	for _, want := range []string{"Device", "Dir", "trusted key", "Store", "Link", "Activator", "Checker", `"a b"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New error lacks %q: %v", want, err)
		}
	}
}

// TestStuckRetireDoesNotBlockUpdates: a daemon whose Retire keeps failing
// leaves old files on disk, but the next update still goes through, and a
// rollback that fails for a while is retried until it works.
func TestStuckRetireDoesNotBlockUpdates(t *testing.T) {
	w := newWorld(t)
	w.act.retireErr = errInjected
	w.act.rollbackErr = 3
	w.opts = func(o *Options) {
		o.KeepVersions = 1
		o.Download.BackoffMin, o.Download.BackoffMax = 5*time.Millisecond, 20*time.Millisecond
	}
	r := w.start(w.options())
	defer r.stop(w)
	for v := int64(1); v <= 3; v++ {
		w.publish(fleetTopic, w.manifest(v, uint64(v), "qwen"))
		eventually(t, "the new version", 10*time.Second, func() bool {
			s := r.u.Status()
			return s.ActiveVersion == v && s.Phase == PhaseActive
		})
	}
	eventually(t, "the retire error reported", 5*time.Second, func() bool {
		return strings.Contains(r.u.Status().LastError, errInjected.Error())
	})
	if got := len(w.storedState().Retiring); got != 1 {
		t.Errorf("retiring %d releases, want version 1 still waiting", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.u.Rollback(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if active, serving, calls, _ := w.act.state(); active.Version != 2 || !serving {
		t.Errorf("daemon on %d after a rollback that failed 3 times first: %q", active.Version, calls)
	}
	w.noViolations()
}
