package fleet

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// The holes of "Manifests are not scoped", one test each. Each failed
// before scoping, key lists, the watermark and the download rules.

// TestJunkOnDeviceTopicDoesNotBlockTheFleet: a payload retained on the
// device's own topic that does not verify is ignored, with its reason in
// the status, and the fleet's manifest applies.
func TestJunkOnDeviceTopicDoesNotBlockTheFleet(t *testing.T) {
	w := newWorld(t)
	w.link.operator(deviceTopic, []byte(`{"junk":true}`))
	w.publish(fleetTopic, w.manifest(1, 1, "qwen"))
	r := w.start(w.options())
	defer r.stop(w)
	eventually(t, "the fleet's version 1", 10*time.Second, func() bool {
		s := r.u.Status()
		return s.ActiveVersion == 1 && s.Phase == PhaseActive
	})
	s := r.u.Status()
	if !strings.Contains(s.LastError, deviceTopic) || !strings.Contains(s.LastError, ErrMalformed.Error()) {
		t.Errorf("last error %q does not say why the device topic was ignored", s.LastError)
	}
}

// TestHTTPArtifactURLRefused: a plain-http URL to a host that is not
// loopback is refused before any download.
func TestHTTPArtifactURLRefused(t *testing.T) {
	w := newWorld(t)
	r := w.start(w.options())
	defer r.stop(w)
	m := w.manifest(1, 1, "qwen")
	m.Artifacts[0].URL = "http://models.example.com/qwen.gguf"
	w.publish(fleetTopic, m)
	s := r.waitPhase(t, PhaseFailed)
	if !strings.Contains(s.Reason, "https") {
		t.Errorf("reason %q does not say https is required", s.Reason)
	}
}

// TestCrossHostRedirectRefused: a redirect to another host fails the
// update; one to the same host is followed.
func TestCrossHostRedirectRefused(t *testing.T) {
	w := newWorld(t)
	r := w.start(w.options())
	defer r.stop(w)
	m := w.manifest(1, 1, "qwen")
	target := m.Artifacts[0].URL
	w.srv.setPlan(func(n int, req *http.Request) serveMode { return serveMode{} })
	redirect := w.srv.redirect("/moved", strings.Replace(target, "127.0.0.1", "localhost", 1))
	m.Artifacts[0].URL = redirect
	w.publish(fleetTopic, m)
	s := r.waitPhase(t, PhaseFailed)
	if !strings.Contains(s.Reason, "redirect") {
		t.Errorf("reason %q does not name the redirect", s.Reason)
	}
	m2 := w.manifest(2, 2, "qwen")
	m2.Artifacts[0].URL = w.srv.redirect("/moved2", m2.Artifacts[0].URL)
	w.publish(fleetTopic, m2)
	eventually(t, "version 2 through a same-host redirect", 10*time.Second, func() bool {
		return r.u.Status().ActiveVersion == 2
	})
}

// TestVersionJumpNeedsASecondSignature: one key alone cannot sign a
// version so high that it freezes the device.
func TestVersionJumpNeedsASecondSignature(t *testing.T) {
	w := newWorld(t)
	r := w.start(w.options())
	defer r.stop(w)
	w.publish(fleetTopic, w.manifest(1<<53-1, 1, "qwen"))
	eventually(t, "the jump refused", 5*time.Second, func() bool {
		return strings.Contains(r.u.Status().LastError, "second signature")
	})
	if s := r.u.Status(); s.HighestVersion != 0 {
		t.Errorf("highest %d after a refused jump", s.HighestVersion)
	}
}

// TestLostDatabaseKeepsTheHighestVersion: with the database gone, the
// side file still refuses a replay of an old manifest.
func TestLostDatabaseKeepsTheHighestVersion(t *testing.T) {
	w := newWorld(t)
	r := w.start(w.options())
	v1 := mustSign(t, w.manifest(1, 1, "qwen"), w.key)
	w.link.operator(fleetTopic, v1)
	r.waitPhase(t, PhaseActive)
	w.publish(fleetTopic, w.manifest(2, 2, "qwen"))
	eventually(t, "version 2", 10*time.Second, func() bool { return r.u.Status().ActiveVersion == 2 })
	r.stop(w)
	w.st.Close()
	if err := os.Remove(w.dbPath); err != nil {
		t.Fatal(err)
	}
	w.openStore()
	r = w.start(w.options())
	defer r.stop(w)
	w.link.operator(fleetTopic, v1)
	eventually(t, "the replay refused", 5*time.Second, func() bool {
		return strings.Contains(r.u.Status().LastError, "older than 2")
	})
}

// TestReplayMatrix: every way a signed manifest could be replayed or
// pushed where it does not belong is refused, and the refusal's reason
// is in the status (`emberctl update status` shows last_error and
// reason), while the device stays as it was.
func TestReplayMatrix(t *testing.T) {
	root, k1, k2 := testKey(50), testKey(1), testKey(2)
	cases := []struct {
		name string
		// run sets the world up and delivers what must be refused; it
		// returns the highest version the device must still hold.
		run  func(t *testing.T, w *world, r *running) int64
		want error
	}{
		{"other device", func(t *testing.T, w *world, r *running) int64 {
			m := w.manifest(1, 1, "qwen")
			m.Devices = []string{"gw-01", "gw-99"}
			w.publish(fleetTopic, m)
			return 0
		}, ErrOutOfScope},
		{"other fleet", func(t *testing.T, w *world, r *running) int64 {
			m := w.manifest(1, 1, "qwen")
			m.Fleet = "line4"
			w.publish(fleetTopic, m)
			return 0
		}, ErrOutOfScope},
		{"expired", func(t *testing.T, w *world, r *running) int64 {
			m := w.manifest(1, 1, "qwen")
			m.NotAfter = Timestamp{time.Now().Add(-time.Hour)}
			w.publish(fleetTopic, m)
			return 0
		}, ErrExpired},
		{"not yet valid", func(t *testing.T, w *world, r *running) int64 {
			m := w.manifest(1, 1, "qwen")
			m.NotBefore, m.NotAfter = Timestamp{time.Now().Add(time.Hour)}, Timestamp{time.Now().Add(2 * time.Hour)}
			w.publish(fleetTopic, m)
			return 0
		}, ErrNotYetValid},
		{"below floor", func(t *testing.T, w *world, r *running) int64 {
			for v := int64(1); v <= 2; v++ {
				w.publish(fleetTopic, w.manifest(v, uint64(v), "qwen"))
				eventually(t, "the new version", 10*time.Second, func() bool { return r.u.Status().ActiveVersion == v })
			}
			m := w.manifest(5, 5, "qwen")
			m.MinVersion = 5
			w.publish(fleetTopic, m)
			eventually(t, "version 5", 10*time.Second, func() bool {
				s := r.u.Status()
				return s.ActiveVersion == 5 && s.Phase == PhaseActive && s.MinVersion == 5
			})
			if s := r.u.Status(); len(s.KeptVersions) != 0 {
				t.Errorf("kept %v below the floor 5", s.KeptVersions)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := r.u.Rollback(ctx, 2); !errors.Is(err, ErrBelowFloor) {
				t.Errorf("rollback to 2 below the floor: %v", err)
			}
			w.publish(fleetTopic, w.manifest(3, 3, "qwen"))
			return 5
		}, ErrBelowFloor},
		{"junk on the device topic", func(t *testing.T, w *world, r *running) int64 {
			w.link.operator(deviceTopic, []byte("\x00not json"))
			return 0
		}, ErrMalformed},
		{"unsigned on the device topic", func(t *testing.T, w *world, r *running) int64 {
			env := signRaw(t, string(mustJSON(t, w.manifest(1, 1, "qwen"))))
			w.link.operator(deviceTopic, env)
			return 0
		}, ErrNoSignature},
		{"format 1 (unscoped)", func(t *testing.T, w *world, r *running) int64 {
			env := signRaw(t, string(mustJSON(t, w.manifest(1, 1, "qwen"))), w.key)
			w.link.operator(fleetTopic, bytes.Replace(env, []byte(`"format":2`), []byte(`"format":1`), 1))
			return 0
		}, ErrUnscoped},
		{"revoked key", func(t *testing.T, w *world, r *running) int64 {
			w.link.operator(KeyListTopic(testFleet), mustSignKeys(t, NewKeyList(testFleet, 1, pub(k1), pub(k2)), root))
			w.publish(fleetTopic, w.manifest(1, 1, "qwen"))
			eventually(t, "version 1", 10*time.Second, func() bool { return r.u.Status().ActiveVersion == 1 })
			w.link.operator(KeyListTopic(testFleet), mustSignKeys(t, NewKeyList(testFleet, 2, pub(k2)), root))
			eventually(t, "key list 2", 5*time.Second, func() bool { return r.u.Status().KeysVersion == 2 })
			w.publish(fleetTopic, w.manifest(2, 2, "qwen")) // signed by k1, revoked
			return 1
		}, ErrUnknownKey},
		{"key list rollback", func(t *testing.T, w *world, r *running) int64 {
			w.link.operator(KeyListTopic(testFleet), mustSignKeys(t, NewKeyList(testFleet, 3, pub(k1)), root))
			eventually(t, "key list 3", 5*time.Second, func() bool { return r.u.Status().KeysVersion == 3 })
			w.link.operator(KeyListTopic(testFleet), mustSignKeys(t, NewKeyList(testFleet, 2, pub(k1), pub(testKey(9))), root))
			return 0
		}, ErrKeysNotNewer},
		{"lost database", func(t *testing.T, w *world, r *running) int64 {
			v1 := mustSign(t, w.manifest(1, 1, "qwen"), w.key)
			w.link.operator(fleetTopic, v1)
			eventually(t, "version 1", 10*time.Second, func() bool { return r.u.Status().ActiveVersion == 1 })
			w.publish(fleetTopic, w.manifest(2, 2, "qwen"))
			eventually(t, "version 2", 10*time.Second, func() bool { return r.u.Status().ActiveVersion == 2 })
			r.stop(w)
			w.st.Close()
			if err := os.Remove(w.dbPath); err != nil {
				t.Fatal(err)
			}
			w.openStore()
			*r = *w.start(w.options())
			w.link.operator(fleetTopic, v1)
			return 2
		}, ErrNotNewer},
		{"version jump without a second signature", func(t *testing.T, w *world, r *running) int64 {
			w.publish(fleetTopic, w.manifest(1002, 1, "qwen"))
			return 0
		}, ErrVersionJump},
		{"http URL", func(t *testing.T, w *world, r *running) int64 {
			m := w.manifest(1, 1, "qwen")
			m.Artifacts[0].URL = "http://models.example.com/qwen.gguf"
			w.publish(fleetTopic, m)
			return 0
		}, ErrInsecureURL},
		{"cross-host redirect", func(t *testing.T, w *world, r *running) int64 {
			m := w.manifest(1, 1, "qwen")
			m.Artifacts[0].URL = w.srv.redirect("/elsewhere", strings.Replace(m.Artifacts[0].URL, "127.0.0.1", "localhost", 1))
			w.publish(fleetTopic, m)
			return 1 // accepted, then failed at its download: never switched to
		}, ErrRedirect},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.opts = func(o *Options) {
				o.RootKey = pub(root)
				o.Keys = NewKeyRing(pub(k1))
			}
			r := w.start(w.options())
			defer func() { r.stop(w) }()
			highest := tc.run(t, w, r)
			var s Status
			eventually(t, fmt.Sprintf("the refusal (%v) in the status", tc.want), 10*time.Second, func() bool {
				s = r.u.Status()
				return strings.Contains(s.LastError+" "+s.Reason, tc.want.Error())
			})
			if s.HighestVersion != highest {
				t.Errorf("highest version %d, want %d (status %+v)", s.HighestVersion, highest, s)
			}
			if s.ActiveVersion > highest {
				t.Errorf("active version %d above %d", s.ActiveVersion, highest)
			}
			w.noViolations()
		})
	}
}

func mustSignKeys(t testing.TB, kl *KeyList, root ed25519.PrivateKey) []byte {
	t.Helper()
	env, err := SignKeyList(kl, root)
	if err != nil {
		t.Fatalf("SignKeyList: %v", err)
	}
	return env
}
