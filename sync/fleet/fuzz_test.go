package fleet

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"testing"
)

// FuzzVerifyEnvelope feeds the decoder of the desired topics: whatever
// arrives must be refused with one of the documented errors or verified,
// never panic; what verifies is canonical and valid.
func FuzzVerifyEnvelope(f *testing.F) {
	golden, err := os.ReadFile("testdata/manifest.envelope.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add(signRaw(f, goodManifest, testKey(1)))
	f.Add(signRaw(f, goodManifest, testKey(2), testKey(1)))
	f.Add([]byte(`{"format":2,"manifest":{` + scopeJSON + `"devices":["gw-07"],"min_version":1,"version":1,"artifacts":[{"kind":"pipelines","name":"p","url":"http://h/p","sha256":"` +
		"0000000000000000000000000000000000000000000000000000000000000000" + `","size":1}],"checks":[{"prompt":"x","max_tokens":1,` +
		`"json_schema":{"type":"object"},"contains":["a"],"max_first_token_latency":"1s"}]},"signatures":[{"key_id":"34750f98bd59fcfc","signature":"AAAA"}]}`))
	f.Add([]byte(`{"format":2,"manifest":{},"signatures":[]}`))
	f.Add([]byte(`{"format":1,"manifest":{"version":1},"signatures":[{"key_id":"34750f98bd59fcfc","signature":"AAAA"}]}`))
	f.Add([]byte(`{"a":"\ud83d\ude00","b":[1e400]}`))
	ring := NewKeyRing(pub(testKey(1)))
	documented := []error{ErrMalformed, ErrNoSignature, ErrBadSignature, ErrUnknownKey, ErrUnscoped}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Verify(data, ring)
		if err != nil {
			known := false
			for _, e := range documented {
				known = known || errors.Is(err, e)
			}
			if !known {
				t.Fatalf("Verify error %v is none of the documented ones", err)
			}
		} else {
			if err := v.Manifest.Validate(); err != nil {
				t.Fatalf("verified an invalid manifest: %v", err)
			}
			again, err := Canonicalize(v.Canonical)
			if err != nil || !bytes.Equal(again, v.Canonical) {
				t.Fatalf("verified manifest is not canonical: %s", v.Canonical)
			}
		}
		// The structural parse alone (what emberctl publish does) must
		// not panic either, and agrees with Verify on a valid manifest.
		_, m, perr := ParseEnvelope(data)
		if err == nil && (perr != nil || !reflect.DeepEqual(m, v.Manifest)) {
			t.Fatalf("ParseEnvelope disagrees with Verify: %v", perr)
		}
	})
}

// FuzzCanonicalize: a canonical form is canonical, is JSON, and means
// what the input meant.
func FuzzCanonicalize(f *testing.F) {
	for _, s := range []string{
		`{"b":1,"a":[true,false,null,"x"]}`, `1.5e300`, `-0`, `"\u00e9\ud83d\ude00\u001f"`,
		`{"\u20ac":1,"\r":2,"\ufb33":3}`, `[[[[]]]]`, `0.1`, `123456789012345`, `{"a":{"a":{}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := Canonicalize(data)
		if err != nil {
			return
		}
		again, err := Canonicalize(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q → %q → %q, %v", data, out, again, err)
		}
		if !json.Valid(out) {
			t.Fatalf("canonical form is not JSON: %q", out)
		}
		var a, b any
		if json.Unmarshal(data, &a) == nil {
			if err := json.Unmarshal(out, &b); err != nil || !reflect.DeepEqual(a, b) {
				t.Fatalf("meaning changed: %q → %q", data, out)
			}
		}
	})
}

// FuzzParseManifestYAML: what the CLI accepts, it can sign.
func FuzzParseManifestYAML(f *testing.F) {
	if b, err := os.ReadFile("testdata/manifest.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("version: 1\nartifacts:\n  - {kind: pipelines, name: p, url: 'https://h/p', sha256: '" +
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + "', size: 1}\n"))
	f.Add([]byte("version: [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifestYAML(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		env, err := Sign(m, testKey(1))
		if err != nil {
			t.Fatalf("accepted YAML does not sign: %v", err)
		}
		if _, err := Verify(env, NewKeyRing(pub(testKey(1)))); err != nil {
			t.Fatalf("signed YAML does not verify: %v", err)
		}
	})
}

// FuzzDecodeState: a damaged state record is an error, never a panic,
// and what decodes round-trips.
func FuzzDecodeState(f *testing.F) {
	m := machine{keep: 2, maxAttempts: 3}
	s := State{}
	for _, ev := range []Event{EvAccept{testTarget(1, "a", "b")}, EvDownloaded{0}} {
		s, _ = m.next(s, ev)
		b, _ := encodeState(s)
		f.Add(b)
	}
	f.Add([]byte(`{"format":1,"phase":"rolling_back","current":{"version":0},"rollback_to":{"version":0},"transitions":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decodeState(data)
		if err != nil {
			return
		}
		b, err := encodeState(s)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := decodeState(b)
		if err != nil || !reflect.DeepEqual(s, s2) {
			t.Fatalf("round trip: %v", err)
		}
		// The machine must cope with any state that decodes.
		for _, ev := range []Event{EvStart{}, EvVerified{}, EvRolledBack{}, EvManualRollback{To: 0}, EvRetired{Version: 0}} {
			m.next(s, ev)
		}
	})
}

// FuzzVerifyKeyList feeds the decoder of the key list topic: refused
// with a documented error or verified, never a panic; what verifies is
// valid and for the fleet.
func FuzzVerifyKeyList(f *testing.F) {
	root := testKey(50)
	good, err := SignKeyList(NewKeyList("line3", 2, pub(testKey(1)), pub(testKey(2))), root)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"format":1,"keys":{"fleet":"line3","version":1,"keys":[{"key_id":"00","public_key":"AA=="}]},"signatures":[{"key_id":"34750f98bd59fcfc","signature":"AAAA"}]}`))
	f.Add([]byte(`{"format":1,"keys":{},"signatures":[]}`))
	documented := []error{ErrMalformed, ErrNoSignature, ErrBadSignature, ErrUnknownKey, ErrOutOfScope}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := VerifyKeyList(data, pub(root), "line3")
		if err != nil {
			known := false
			for _, e := range documented {
				known = known || errors.Is(err, e)
			}
			if !known {
				t.Fatalf("VerifyKeyList error %v is none of the documented ones", err)
			}
			return
		}
		if err := v.List.Validate(); err != nil || v.List.Fleet != "line3" || v.Ring().Len() != len(v.List.Keys) {
			t.Fatalf("verified an invalid key list: %v %+v", err, v.List)
		}
	})
}

// FuzzDecodeWatermark: the side file is read strictly, never a panic,
// and what it accepts keeps its invariants.
func FuzzDecodeWatermark(f *testing.F) {
	f.Add([]byte(`{"format":1,"highest_version":7,"highest_digest":"ab","min_version":3}`))
	f.Add([]byte(`{"format":1,"highest_version":1,"keys_version":2,"keys":{"format":1}}`))
	f.Add([]byte(`{"format":1,"highest_version":-1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		wm, err := decodeWatermark(data)
		if err != nil {
			return
		}
		if wm.Highest < 0 || wm.Floor > wm.Highest || (wm.KeysVersion > 0) != (len(wm.Keys) > 0) {
			t.Fatalf("accepted a broken watermark %+v", wm)
		}
	})
}
