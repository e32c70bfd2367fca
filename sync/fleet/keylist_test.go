package fleet

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func TestVerifyKeyList(t *testing.T) {
	root, k1, k2 := testKey(50), testKey(1), testKey(2)
	good := mustSignKeys(t, NewKeyList("line3", 4, pub(k1), pub(k2)), root)
	v, err := VerifyKeyList(good, pub(root), "line3")
	if err != nil {
		t.Fatal(err)
	}
	if v.List.Version != 4 || v.Ring().Len() != 2 || len(v.Digest) != 64 {
		t.Errorf("verified %+v", v.List)
	}
	tamper := func(old, new string) []byte {
		if !bytes.Contains(good, []byte(old)) {
			t.Fatalf("%q not in %s", old, good)
		}
		return bytes.Replace(good, []byte(old), []byte(new), 1)
	}
	cases := map[string]struct {
		data []byte
		want error
	}{
		"other fleet":      {mustSignKeys(t, NewKeyList("line4", 4, pub(k1)), root), ErrOutOfScope},
		"not the root":     {mustSignKeys(t, NewKeyList("line3", 4, pub(k1)), k2), ErrUnknownKey},
		"tampered version": {tamper(`"version": 4`, `"version": 5`), ErrBadSignature},
		"format 2":         {tamper(`"format": 1`, `"format": 2`), ErrMalformed},
		"no signatures":    {[]byte(`{"format":1,"keys":{"fleet":"line3","version":1,"keys":[]},"signatures":[]}`), ErrNoSignature},
		"not json":         {[]byte("keys"), ErrMalformed},
	}
	for name, tc := range cases {
		if _, err := VerifyKeyList(tc.data, pub(root), "line3"); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	// A manifest signed by the root key is no key list: other field,
	// other signing context.
	env := signRaw(t, goodManifest, root)
	if _, err := VerifyKeyList(env, pub(root), "line3"); !errors.Is(err, ErrMalformed) {
		t.Errorf("manifest as key list: %v", err)
	}
	// Rules: the signer refuses them, and so does the device.
	for name, kl := range map[string]*KeyList{
		"no keys":       {Fleet: "line3", Version: 1},
		"version 0":     NewKeyList("line3", 0, pub(k1)),
		"id mismatch":   {Fleet: "line3", Version: 1, Keys: []ListedKey{{KeyID: KeyID(pub(k2)), PublicKey: NewKeyList("x", 1, pub(k1)).Keys[0].PublicKey}}},
		"listed twice":  NewKeyList("line3", 1, pub(k1), pub(k1)),
		"bad fleet":     NewKeyList("a/b", 1, pub(k1)),
		"root is in it": NewKeyList("line3", 1, pub(root)),
	} {
		if _, err := SignKeyList(kl, root); err == nil {
			t.Errorf("%s: signed", name)
		}
	}
}

func TestCheckScope(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	m := func(f func(*Manifest)) *Manifest {
		m := &Manifest{Fleet: "line3", NotAfter: Timestamp{now.Add(time.Hour)}}
		f(m)
		return m
	}
	for name, tc := range map[string]struct {
		m    *Manifest
		want error
	}{
		"in scope":              {m(func(*Manifest) {}), nil},
		"named":                 {m(func(m *Manifest) { m.Devices = []string{"gw-01", "gw-07"} }), nil},
		"not named":             {m(func(m *Manifest) { m.Devices = []string{"gw-01"} }), ErrOutOfScope},
		"other fleet":           {m(func(m *Manifest) { m.Fleet = "line4" }), ErrOutOfScope},
		"expired":               {m(func(m *Manifest) { m.NotAfter = Timestamp{now.Add(-time.Second)} }), ErrExpired},
		"not yet":               {m(func(m *Manifest) { m.NotBefore = Timestamp{now.Add(ClockSkew + time.Second)} }), ErrNotYetValid},
		"within the clock skew": {m(func(m *Manifest) { m.NotBefore = Timestamp{now.Add(ClockSkew - time.Second)} }), nil},
	} {
		if err := tc.m.CheckScope("line3", "gw-07", now); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}

// TestKeyListSurvivesALostDatabase: the key list is kept in the
// watermark too, so a device whose database is lost does not fall back
// to fleet.trusted_keys, which may hold a revoked key.
func TestKeyListSurvivesALostDatabase(t *testing.T) {
	root, k1, k2 := testKey(50), testKey(1), testKey(2)
	w := newWorld(t)
	w.opts = func(o *Options) { o.RootKey, o.Keys = pub(root), NewKeyRing(pub(k1)) }
	r := w.start(w.options())
	w.link.operator(KeyListTopic(testFleet), mustSignKeys(t, NewKeyList(testFleet, 2, pub(k2)), root))
	eventually(t, "key list 2", 5*time.Second, func() bool { return r.u.Status().KeysVersion == 2 })
	r.stop(w)
	w.link.operator(KeyListTopic(testFleet), nil) // the broker lost it too
	w.st.Close()
	if err := os.Remove(w.dbPath); err != nil {
		t.Fatal(err)
	}
	w.openStore()
	r = w.start(w.options())
	defer r.stop(w)
	w.link.operator(fleetTopic, mustSign(t, w.manifest(1, 1, "qwen"), k1)) // k1: in the config, not in the list
	eventually(t, "the revoked key refused", 5*time.Second, func() bool {
		s := r.u.Status()
		return s.KeysVersion == 2 && strings.Contains(s.LastError, ErrUnknownKey.Error()) && strings.Contains(s.LastError, "key list version 2")
	})
	w.link.operator(fleetTopic, mustSign(t, w.manifest(2, 2, "qwen"), k2))
	eventually(t, "version 2 by the listed key", 10*time.Second, func() bool { return r.u.Status().ActiveVersion == 2 })
}

// TestRevocationStopsADownload: a key list that drops the only key that
// signed the target abandons it before its switch.
func TestRevocationStopsADownload(t *testing.T) {
	root, k1, k2 := testKey(50), testKey(1), testKey(2)
	w := newWorld(t)
	w.srv.setPlan(func(n int, r *http.Request) serveMode { return serveMode{stallAfter: 100} })
	w.opts = func(o *Options) {
		o.RootKey, o.Keys = pub(root), NewKeyRing(pub(k1))
		o.Download.StallTimeout = time.Minute
	}
	r := w.start(w.options())
	defer r.stop(w)
	w.link.operator(fleetTopic, mustSign(t, w.manifest(1, 1, "qwen"), k1))
	r.waitPhase(t, PhaseDownloading)
	w.link.operator(KeyListTopic(testFleet), mustSignKeys(t, NewKeyList(testFleet, 1, pub(k2)), root))
	s := r.waitPhase(t, PhaseFailed)
	if !strings.Contains(s.Reason, "no longer trusts") {
		t.Errorf("reason %q", s.Reason)
	}
	if _, _, calls, _ := w.act.state(); len(calls) != 0 {
		t.Errorf("activator called: %q", calls)
	}
}

// TestVersionJumpWithTwoKeys: two different trusted keys may jump.
func TestVersionJumpWithTwoKeys(t *testing.T) {
	w := newWorld(t)
	k2 := testKey(2)
	w.opts = func(o *Options) { o.Keys, o.MaxVersionJump = NewKeyRing(pub(w.key), pub(k2)), 10 }
	r := w.start(w.options())
	defer r.stop(w)
	w.link.operator(fleetTopic, mustSign(t, w.manifest(11, 1, "qwen"), w.key))
	eventually(t, "the jump refused", 5*time.Second, func() bool {
		return strings.Contains(r.u.Status().LastError, ErrVersionJump.Error())
	})
	w.link.operator(fleetTopic, mustSign(t, w.manifest(11, 1, "qwen"), w.key, k2))
	eventually(t, "version 11", 10*time.Second, func() bool { return r.u.Status().ActiveVersion == 11 })
}
