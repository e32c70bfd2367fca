package fleet

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// EnvelopeFormat is the envelope format this package writes and reads.
// Format 1 (manifests without fleet, devices and validity) is refused
// with ErrUnscoped.
const EnvelopeFormat = 2

// signingContext is prepended to the canonical manifest before signing,
// so a signature over a manifest can never be replayed as a signature
// over anything else signed with the same key — nor over a manifest of
// another format: the context names the format.
const signingContext = "ember-fleet-manifest-v2\n"

// Envelope is the signed form of a manifest, the payload of the desired
// topics: {"format":2,"manifest":{…},"signatures":[{"key_id":…,"signature":…}]}.
type Envelope struct {
	Format     int             `json:"format"`
	Manifest   json.RawMessage `json:"manifest"`
	Signatures []Signature     `json:"signatures"`
}

// Signature is one ed25519 signature over the manifest's canonical
// encoding (with signingContext in front).
type Signature struct {
	// KeyID is the first 8 bytes of the sha256 of the raw public key, in
	// lower-case hex.
	KeyID string `json:"key_id"`
	// Signature is the 64-byte signature in standard base64.
	Signature string `json:"signature"`
}

var keyIDPattern = regexp.MustCompile(`^[0-9a-f]{16}$`)

// KeyID returns the id of a public key: the first 8 bytes of the sha256
// of its 32 raw bytes, in lower-case hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return fmt.Sprintf("%x", sum[:8])
}

// signedMessage is what a signature covers.
func signedMessage(canonical []byte) []byte {
	return append([]byte(signingContext), canonical...)
}

// Sign validates m, encodes it canonically and returns an envelope signed
// by every key, ready to publish. More than one key is how a fleet rotates
// keys (FORMAT.md, "Key rotation").
func Sign(m *Manifest, keys ...ed25519.PrivateKey) ([]byte, error) {
	if len(keys) == 0 {
		return nil, errors.New("sign: no key")
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	canonical, err := Canonicalize(raw)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	env := Envelope{Format: EnvelopeFormat, Manifest: canonical}
	seen := map[string]bool{}
	for _, k := range keys {
		id := KeyID(k.Public().(ed25519.PublicKey))
		if seen[id] {
			return nil, fmt.Errorf("sign: key %s given twice", id)
		}
		seen[id] = true
		sig := ed25519.Sign(k, signedMessage(canonical))
		env.Signatures = append(env.Signatures, Signature{KeyID: id, Signature: base64.StdEncoding.EncodeToString(sig)})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(env); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return buf.Bytes(), nil
}

// ParseEnvelope checks that data is a well-formed envelope — the shape,
// format 1, signatures that are syntactically right, a manifest that is
// valid by itself — without checking any signature against a key.
// emberctl uses it before publishing. It returns the envelope with the
// manifest in canonical form, and the decoded manifest.
func ParseEnvelope(data []byte) (*Envelope, *Manifest, error) {
	env, err := parseEnvelope(data)
	if err != nil {
		return nil, nil, err
	}
	m, err := decodeManifest(env.Manifest)
	if err != nil {
		return nil, nil, err
	}
	return env, m, nil
}

// parseEnvelope checks the envelope's shape and canonicalizes its
// manifest; it does not look inside the manifest.
func parseEnvelope(data []byte) (*Envelope, error) {
	format, body, sigs, err := parseSigned(data, "manifest", "envelope")
	if err != nil {
		return nil, err
	}
	if format == "1" {
		return nil, ErrUnscoped
	}
	if format != "2" {
		return nil, fmt.Errorf("%w: format %s: this device reads format %d", ErrMalformed, format, EnvelopeFormat)
	}
	return &Envelope{Format: EnvelopeFormat, Manifest: body, Signatures: sigs}, nil
}

// parseSigned checks the shape shared by the signed payloads (a manifest
// envelope, a key list): an object of exactly format, body and
// signatures, at most maxEnvelopeBytes. It returns the format as written,
// the body canonicalized, and the signatures, syntactically checked.
func parseSigned(data []byte, body, what string) (string, []byte, []Signature, error) {
	if len(data) > maxEnvelopeBytes {
		return "", nil, nil, fmt.Errorf("%w: %s is %d bytes, the limit is %d", ErrMalformed, what, len(data), maxEnvelopeBytes)
	}
	root, err := parseJSON(data)
	if err != nil {
		return "", nil, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if root.kind != jsonObject {
		return "", nil, nil, fmt.Errorf("%w: %s is not a JSON object", ErrMalformed, what)
	}
	if err := onlyKeys(root, "", "format", body, "signatures"); err != nil {
		return "", nil, nil, err
	}
	format := root.member("format")
	if format == nil || format.kind != jsonNumber {
		return "", nil, nil, fmt.Errorf("%w: format: missing or not a number", ErrMalformed)
	}
	bv := root.member(body)
	if bv == nil || bv.kind != jsonObject {
		return "", nil, nil, fmt.Errorf("%w: %s: missing or not an object", ErrMalformed, body)
	}
	canonical := appendCanonical(nil, bv)
	sv := root.member("signatures")
	if sv == nil {
		return "", nil, nil, fmt.Errorf("%w: no signatures field", ErrNoSignature)
	}
	if sv.kind != jsonArray {
		return "", nil, nil, fmt.Errorf("%w: signatures: not a list", ErrMalformed)
	}
	if len(sv.arr) == 0 {
		return "", nil, nil, fmt.Errorf("%w: the signatures list is empty", ErrNoSignature)
	}
	var sigs []Signature
	for i, s := range sv.arr {
		p := fmt.Sprintf("signatures[%d]", i)
		if s.kind != jsonObject {
			return "", nil, nil, fmt.Errorf("%w: %s: not an object", ErrMalformed, p)
		}
		if err := onlyKeys(s, p+".", "key_id", "signature"); err != nil {
			return "", nil, nil, err
		}
		id, sig := s.member("key_id"), s.member("signature")
		if id == nil || id.kind != jsonString || !keyIDPattern.MatchString(id.s) {
			return "", nil, nil, fmt.Errorf("%w: %s.key_id: want 16 lower-case hex digits", ErrMalformed, p)
		}
		if sig == nil || sig.kind != jsonString {
			return "", nil, nil, fmt.Errorf("%w: %s.signature: missing or not a string", ErrMalformed, p)
		}
		sigs = append(sigs, Signature{KeyID: id.s, Signature: sig.s})
	}
	return format.s, canonical, sigs, nil
}

// checkSignatures returns the ids of the ring's keys whose signatures
// over msg verify, each once. None: ErrBadSignature when a trusted key's
// signature is there but does not verify, else ErrUnknownKey.
func checkSignatures(sigs []Signature, msg []byte, ring *KeyRing, what string) ([]string, error) {
	var good, bad, unknown []string
	for _, s := range sigs {
		pub, ok := ring.Key(s.KeyID)
		if !ok {
			unknown = append(unknown, s.KeyID)
			continue
		}
		sig, err := base64.StdEncoding.Strict().DecodeString(s.Signature)
		if err != nil || len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, msg, sig) {
			bad = append(bad, s.KeyID)
			continue
		}
		if !slices.Contains(good, s.KeyID) {
			good = append(good, s.KeyID)
		}
	}
	switch {
	case len(good) > 0:
		return good, nil
	case len(bad) > 0:
		return nil, fmt.Errorf("%w: %s by trusted key %s", ErrBadSignature, what, strings.Join(bad, ", "))
	}
	return nil, fmt.Errorf("%w: %s signed by %s; this device trusts %s", ErrUnknownKey, what,
		strings.Join(unknown, ", "), ring.describe())
}

// onlyKeys refuses members of obj other than keys.
func onlyKeys(obj *jsonValue, prefix string, keys ...string) error {
	for _, m := range obj.obj {
		if !slices.Contains(keys, m.key) {
			return fmt.Errorf("%w: unknown field %q (known: %s)", ErrMalformed, prefix+m.key, strings.Join(keys, ", "))
		}
	}
	return nil
}

// decodeManifest decodes a canonical manifest strictly and validates it.
func decodeManifest(canonical []byte) (*Manifest, error) {
	root, err := parseJSON(canonical)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err := checkShape(root); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(canonical))
	dec.DisallowUnknownFields()
	m := &Manifest{}
	if err := dec.Decode(m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// The keys of each manifest object, exactly: encoding/json matches field
// names without regard to case, which would let "Version" stand in for
// "version" or both appear at once.
var (
	manifestKeys = shape{known: []string{"fleet", "devices", "not_before", "not_after", "min_version", "version", "artifacts", "checks"},
		required: []string{"fleet", "not_after", "version", "artifacts"}}
	artifactKeys = shape{known: []string{"kind", "name", "url", "sha256", "size", "license", "requires"},
		required: []string{"kind", "name", "url", "sha256", "size"}}
	requiresKeys = shape{known: []string{"min_memory", "arch"}}
	checkKeys    = shape{known: []string{"model", "prompt", "max_tokens", "json_schema", "contains", "not_contains",
		"min_tokens_per_second", "max_first_token_latency"}, required: []string{"prompt", "max_tokens"}}
)

type shape struct{ known, required []string }

// check refuses unknown keys and reports missing required ones.
func (s shape) check(obj *jsonValue, path string, missing *[]string) error {
	if obj.kind != jsonObject {
		return fmt.Errorf("%w: %s: want an object", ErrMalformed, strings.TrimSuffix(path, "."))
	}
	if err := onlyKeys(obj, path, s.known...); err != nil {
		return err
	}
	for _, k := range s.required {
		if obj.member(k) == nil {
			*missing = append(*missing, path+k)
		}
	}
	return nil
}

// checkShape refuses unknown keys anywhere in a manifest (json_schema's
// contents aside) and fields FORMAT.md says are required, even where
// their zero value would otherwise pass.
func checkShape(root *jsonValue) error {
	var missing []string
	if err := manifestKeys.check(root, "", &missing); err != nil {
		return err
	}
	if arts := root.member("artifacts"); arts != nil && arts.kind == jsonArray {
		for i, a := range arts.arr {
			p := fmt.Sprintf("artifacts[%d].", i)
			if err := artifactKeys.check(a, p, &missing); err != nil {
				return err
			}
			if r := a.member("requires"); r != nil {
				if err := requiresKeys.check(r, p+"requires.", &missing); err != nil {
					return err
				}
			}
		}
	}
	if checks := root.member("checks"); checks != nil && checks.kind == jsonArray {
		for i, c := range checks.arr {
			if err := checkKeys.check(c, fmt.Sprintf("checks[%d].", i), &missing); err != nil {
				return err
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing fields: %s", ErrMalformed, strings.Join(missing, ", "))
	}
	return nil
}

// Verified is a manifest whose envelope verified against the trusted keys.
type Verified struct {
	Manifest *Manifest
	// Canonical is the canonical encoding the signatures cover.
	Canonical []byte
	// Digest is the hex sha256 of Canonical: it names this exact
	// manifest in state and reports.
	Digest string
	// KeyIDs are the trusted keys whose signatures verified.
	KeyIDs []string
}

// Verify parses an envelope and checks its signatures against ring: at
// least one signature by a trusted key must verify. It refuses, in this
// order, a malformed envelope (ErrMalformed), one with no signatures
// (ErrNoSignature), one whose trusted-key signatures do not verify
// (ErrBadSignature) and one with no trusted-key signature (ErrUnknownKey);
// signatures by keys the ring does not hold are ignored. Versions are not
// its business: the Updater refuses replays.
func Verify(data []byte, ring *KeyRing) (*Verified, error) {
	env, err := parseEnvelope(data)
	if err != nil {
		return nil, err
	}
	good, err := checkSignatures(env.Signatures, signedMessage(env.Manifest), ring, "manifest")
	if err != nil {
		return nil, err
	}
	// Only now, signed by a trusted key, is the manifest worth reading.
	m, err := decodeManifest(env.Manifest)
	if err != nil {
		return nil, err
	}
	return &Verified{
		Manifest:  m,
		Canonical: env.Manifest,
		Digest:    hexDigest(sha256.Sum256(env.Manifest)),
		KeyIDs:    good,
	}, nil
}
