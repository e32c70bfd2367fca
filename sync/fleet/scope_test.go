package fleet

import (
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
