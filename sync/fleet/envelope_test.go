package fleet

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// scopeJSON is the scope every test manifest carries: fleet line3, valid
// until 2100.
const scopeJSON = `"fleet":"line3","not_after":"2100-01-01T00:00:00Z",`

const goodManifest = `{` + scopeJSON + `"version":3,"artifacts":[{"kind":"model","name":"qwen","url":"https://h/q.gguf",` +
	`"sha256":"74a4da8c9fdbcd15bd1f6d01d621410d31c6fc00986f5eb687824e7b93d7a9db","size":100,"license":"mit"}]}`

func TestVerifySignatures(t *testing.T) {
	k1, k2, k3 := testKey(1), testKey(2), testKey(3)
	ring := NewKeyRing(pub(k1))
	signed := signRaw(t, goodManifest, k1)
	tamper := func(old, new string) []byte {
		if !bytes.Contains(signed, []byte(old)) {
			t.Fatalf("%q not in the envelope", old)
		}
		return bytes.Replace(signed, []byte(old), []byte(new), 1)
	}
	badSig := func(env []byte) []byte {
		var e Envelope
		json.Unmarshal(env, &e)
		sig, _ := base64.StdEncoding.DecodeString(e.Signatures[0].Signature)
		sig[10] ^= 1
		return bytes.Replace(env, []byte(e.Signatures[0].Signature), []byte(base64.StdEncoding.EncodeToString(sig)), 1)
	}
	cases := []struct {
		name string
		env  []byte
		want error
	}{
		{"valid", signed, nil},
		{"tampered version", tamper(`"version":3`, `"version":4`), ErrBadSignature},
		{"tampered sha256", tamper(`74a4da8c`, `74a4da8d`), ErrBadSignature},
		{"tampered url", tamper(`https://h/q.gguf`, `https://evil/q.gguf`), ErrBadSignature},
		{"added field", tamper(`"license":"mit"`, `"license":"mit","extra":1`), ErrBadSignature},
		{"corrupt signature", badSig(signed), ErrBadSignature},
		{"signature not base64", tamper(`"signature":"`, `"signature":"!!`), ErrBadSignature},
		{"unknown key", signRaw(t, goodManifest, k2), ErrUnknownKey},
		{"no signatures", []byte(`{"format":2,"manifest":` + goodManifest + `,"signatures":[]}`), ErrNoSignature},
		{"signatures field missing", []byte(`{"format":2,"manifest":` + goodManifest + `}`), ErrNoSignature},
		{"one trusted among others", signRaw(t, goodManifest, k2, k1, k3), nil},
		{"trusted good beats trusted bad", func() []byte {
			env := signRaw(t, goodManifest, k1)
			var e Envelope
			json.Unmarshal(env, &e)
			bad := Signature{KeyID: e.Signatures[0].KeyID, Signature: base64.StdEncoding.EncodeToString(make([]byte, 64))}
			e.Signatures = append([]Signature{bad}, e.Signatures...)
			return mustJSON(t, e)
		}(), nil},
		{"reformatted envelope still verifies", func() []byte {
			var e Envelope
			json.Unmarshal(signed, &e)
			var pretty bytes.Buffer
			json.Indent(&pretty, mustJSON(t, e), "", "    ")
			return pretty.Bytes()
		}(), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := Verify(tc.env, ring)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if v.Manifest.Version != 3 || v.KeyIDs[0] != KeyID(pub(k1)) || len(v.Digest) != 64 {
					t.Errorf("verified %+v", v)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestVerifyRefusesMalformedManifests(t *testing.T) {
	k := testKey(1)
	ring := NewKeyRing(pub(k))
	art := func(fields string) string {
		return `{` + scopeJSON + `"version":3,"artifacts":[` + fields + `]}`
	}
	const sha = `"74a4da8c9fdbcd15bd1f6d01d621410d31c6fc00986f5eb687824e7b93d7a9db"`
	base := `"kind":"model","name":"qwen","url":"https://h/q","sha256":` + sha + `,"size":100,"license":"mit"`
	cases := map[string]struct {
		manifest string
		mention  string
	}{
		"unknown top-level field":   {`{` + scopeJSON + `"version":3,"artifacts":[{` + base + `}],"extra":true}`, `unknown field "extra"`},
		"unknown artifact field":    {art(`{` + base + `,"mirror":"x"}`), `unknown field "artifacts[0].mirror"`},
		"case-variant key":          {`{` + scopeJSON + `"Version":3,"artifacts":[{` + base + `}]}`, `"Version"`},
		"missing version":           {`{` + scopeJSON + `"artifacts":[{` + base + `}]}`, `version`},
		"missing sha256":            {art(`{"kind":"model","name":"q","url":"https://h/q","size":1,"license":"mit"}`), `artifacts[0].sha256`},
		"missing size":              {art(`{"kind":"model","name":"q","url":"https://h/q","sha256":` + sha + `,"license":"mit"}`), `artifacts[0].size`},
		"no artifacts":              {`{` + scopeJSON + `"version":3,"artifacts":[]}`, `at least one`},
		"version zero":              {`{` + scopeJSON + `"version":0,"artifacts":[{` + base + `}]}`, `version`},
		"version not an integer":    {`{` + scopeJSON + `"version":3.5,"artifacts":[{` + base + `}]}`, `version`},
		"version as string":         {`{` + scopeJSON + `"version":"3","artifacts":[{` + base + `}]}`, `version`},
		"bad sha256":                {art(`{"kind":"model","name":"q","url":"https://h/q","sha256":"ABC","size":1,"license":"mit"}`), `sha256`},
		"upper-case sha256":         {art(`{"kind":"model","name":"q","url":"https://h/q","sha256":"` + strings.ToUpper(sha[1:65]) + `","size":1,"license":"mit"}`), `sha256`},
		"size zero":                 {art(`{"kind":"model","name":"q","url":"https://h/q","sha256":` + sha + `,"size":0,"license":"mit"}`), `size`},
		"negative size":             {art(`{"kind":"model","name":"q","url":"https://h/q","sha256":` + sha + `,"size":-5,"license":"mit"}`), `size`},
		"unknown kind":              {art(`{"kind":"firmware","name":"q","url":"https://h/q","sha256":` + sha + `,"size":1}`), `unknown kind`},
		"duplicate names":           {art(`{` + base + `},{` + base + `}`), `duplicate name`},
		"ftp url":                   {art(`{"kind":"model","name":"q","url":"ftp://h/q","sha256":` + sha + `,"size":1,"license":"mit"}`), `scheme "ftp"`},
		"file url":                  {art(`{"kind":"model","name":"q","url":"file:///etc/passwd","sha256":` + sha + `,"size":1,"license":"mit"}`), `scheme "file"`},
		"model without license":     {art(`{"kind":"model","name":"q","url":"https://h/q","sha256":` + sha + `,"size":1}`), `license`},
		"bad name":                  {art(`{"kind":"model","name":"../etc","url":"https://h/q","sha256":` + sha + `,"size":1,"license":"mit"}`), `name`},
		"unknown arch":              {art(`{` + base + `,"requires":{"arch":["aarch64"]}}`), `unknown architecture "aarch64"`},
		"min_memory as string":      {art(`{` + base + `,"requires":{"min_memory":"2GiB"}}`), `min_memory`},
		"check without prompt":      {`{` + scopeJSON + `"version":3,"artifacts":[{` + base + `}],"checks":[{"max_tokens":5}]}`, `checks[0].prompt`},
		"check max_tokens zero":     {`{` + scopeJSON + `"version":3,"artifacts":[{` + base + `}],"checks":[{"prompt":"p","max_tokens":0}]}`, `max_tokens`},
		"check on unknown model":    {`{` + scopeJSON + `"version":3,"artifacts":[{` + base + `}],"checks":[{"model":"x","prompt":"p","max_tokens":5}]}`, `not a model artifact`},
		"check bad latency":         {`{` + scopeJSON + `"version":3,"artifacts":[{` + base + `}],"checks":[{"prompt":"p","max_tokens":5,"max_first_token_latency":"soon"}]}`, `duration`},
		"check schema not object":   {`{` + scopeJSON + `"version":3,"artifacts":[{` + base + `}],"checks":[{"prompt":"p","max_tokens":5,"json_schema":"x"}]}`, `json_schema`},
		"check unknown expectation": {`{` + scopeJSON + `"version":3,"artifacts":[{` + base + `}],"checks":[{"prompt":"p","max_tokens":5,"regex":"x"}]}`, `unknown field "checks[0].regex"`},
		"duplicate key":             {`{` + scopeJSON + `"version":3,"version":4,"artifacts":[{` + base + `}]}`, `duplicate key`},
		"manifest not an object":    {`[1]`, `manifest`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Verify(signRaw(t, tc.manifest, k), ring)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Verify = %v, want ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q does not mention %q", err, tc.mention)
			}
		})
	}
	for name, env := range map[string]string{
		"format 3":          `{"format":3,"manifest":` + goodManifest + `,"signatures":[{"key_id":"0011223344556677","signature":"AA=="}]}`,
		"unknown envelope":  `{"format":2,"manifest":` + goodManifest + `,"signatures":[],"note":"x"}`,
		"bad key id":        `{"format":2,"manifest":` + goodManifest + `,"signatures":[{"key_id":"XYZ","signature":"AA=="}]}`,
		"signature extra":   `{"format":2,"manifest":` + goodManifest + `,"signatures":[{"key_id":"0011223344556677","signature":"AA==","alg":"x"}]}`,
		"not json":          `format: 1`,
		"envelope is array": `[]`,
		"too large":         `{"format":2,"manifest":{"x":"` + strings.Repeat("a", maxEnvelopeBytes) + `"}}`,
	} {
		if _, err := Verify([]byte(env), ring); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Verify = %v, want ErrMalformed", name, err)
		}
	}
}

func TestSignRefusesBadManifests(t *testing.T) {
	m := &Manifest{Version: 1, Artifacts: []Artifact{{Kind: "model", Name: "q", URL: "gopher://x", SHA256: "x", Size: 0}}}
	_, err := Sign(m, testKey(1))
	var ve *ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, ErrMalformed) || len(ve.Fields) < 4 {
		t.Fatalf("Sign = %v, want every problem listed", err)
	}
	if _, err := Sign(&Manifest{}, testKey(1), testKey(1)); err == nil {
		t.Error("signed twice with one key")
	}
}

func TestKeyIDAndKeyFiles(t *testing.T) {
	k := testKey(1)
	id := KeyID(pub(k))
	if !keyIDPattern.MatchString(id) {
		t.Fatalf("key id %q", id)
	}
	privPEM, err := MarshalPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := MarshalPublicKey(pub(k))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ParsePrivateKey(privPEM); err != nil || !got.Equal(k) {
		t.Fatalf("private key round trip: %v", err)
	}
	if got, err := ParsePublicKey(pubPEM); err != nil || !got.Equal(pub(k)) {
		t.Fatalf("public key round trip: %v", err)
	}
	if _, err := ParsePublicKey(privPEM); err == nil {
		t.Error("a private key parsed as a public key")
	}
	if _, err := ParsePrivateKey(pubPEM); err == nil {
		t.Error("a public key parsed as a private key")
	}

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.pub"), pubPEM, 0o644)
	b64 := base64.StdEncoding.EncodeToString(pub(testKey(2)))
	os.WriteFile(filepath.Join(dir, "b.pub"), []byte(b64+"\n"), 0o644)
	raw := base64.StdEncoding.EncodeToString(pub(testKey(3)))
	ring, err := LoadTrustedKeys([]string{"a.pub", filepath.Join(dir, "b.pub"), raw}, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []byte{1, 2, 3} {
		if _, ok := ring.Key(KeyID(pub(testKey(n)))); !ok {
			t.Errorf("key %d missing from %v", n, ring.IDs())
		}
	}
	_, err = LoadTrustedKeys([]string{"missing.pub", "AAAA", filepath.Join(dir, "a.pub")}, dir)
	if err == nil || !strings.Contains(err.Error(), "trusted_keys[0]") || !strings.Contains(err.Error(), "trusted_keys[1]") {
		t.Errorf("every bad entry should be reported: %v", err)
	}
}

// TestKeyRotation walks FORMAT.md's rotation procedure.
func TestKeyRotation(t *testing.T) {
	oldKey, newKey := testKey(1), testKey(2)
	m, err := ParseManifestYAML([]byte(fmt.Sprintf(yamlScope+`
version: 9
artifacts:
  - {kind: model, name: q, url: "https://h/q", sha256: %s, size: 5, license: mit}
`, strings.Repeat("a", 64))))
	if err != nil {
		t.Fatal(err)
	}
	device := NewKeyRing(pub(oldKey))
	// 1. Devices learn the new key while the old one signs.
	device = NewKeyRing(pub(oldKey), pub(newKey))
	// 2. Manifests are signed by both, so devices not yet updated still
	// accept them.
	both := mustSign(t, m, oldKey, newKey)
	for _, ring := range []*KeyRing{NewKeyRing(pub(oldKey)), device, NewKeyRing(pub(newKey))} {
		if _, err := Verify(both, ring); err != nil {
			t.Fatalf("dual-signed manifest refused by %v: %v", ring.IDs(), err)
		}
	}
	// 3. The old key leaves the devices; what only it signs is refused.
	device = NewKeyRing(pub(newKey))
	if _, err := Verify(mustSign(t, m, oldKey), device); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("old-key manifest after rotation: %v", err)
	}
	if _, err := Verify(mustSign(t, m, newKey), device); err != nil {
		t.Fatal(err)
	}
	_ = ed25519.PublicKeySize
}
