package fleet

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// KeyListFormat is the key list envelope format this package writes and
// reads.
const KeyListFormat = 1

// keysContext is prepended to the canonical key list before signing, so
// that no manifest (or anything else) signed with the root key passes for
// a key list, and the other way round.
const keysContext = "ember-fleet-keys-v1\n"

// maxListedKeys bounds a key list.
const maxListedKeys = 64

// KeyList is the set of keys that may sign a fleet's manifests, signed
// by the fleet's root key (fleet.root_key) and retained on
// fleet/v1/<fleet>/keys. Once a device accepts one, its keys replace
// fleet.trusted_keys: a key left out is revoked, at once. Versions only
// rise: a device refuses a key list not newer than the one it holds.
type KeyList struct {
	Fleet   string      `json:"fleet"`
	Version int64       `json:"version"`
	Keys    []ListedKey `json:"keys"`
}

// ListedKey is one manifest signing key of a key list.
type ListedKey struct {
	// KeyID is KeyID(public key): it must match PublicKey.
	KeyID string `json:"key_id"`
	// PublicKey is the raw 32-byte ed25519 public key in standard base64.
	PublicKey string `json:"public_key"`
}

// KeyListEnvelope is the signed form of a key list:
// {"format":1,"keys":{…},"signatures":[{"key_id":…,"signature":…}]}.
type KeyListEnvelope struct {
	Format     int             `json:"format"`
	Keys       json.RawMessage `json:"keys"`
	Signatures []Signature     `json:"signatures"`
}

// NewKeyList returns a key list of the given public keys.
func NewKeyList(fleet string, version int64, keys ...ed25519.PublicKey) *KeyList {
	kl := &KeyList{Fleet: fleet, Version: version}
	for _, k := range keys {
		kl.Keys = append(kl.Keys, ListedKey{KeyID: KeyID(k), PublicKey: base64.StdEncoding.EncodeToString(k)})
	}
	return kl
}

// Validate checks the key list's rules (FORMAT.md, "Key lists"), all at
// once.
func (kl *KeyList) Validate() error {
	var errs []FieldError
	bad := func(path, format string, args ...any) {
		errs = append(errs, FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if !namePattern.MatchString(kl.Fleet) {
		bad("fleet", "%q must be 1-64 letters, digits, '.', '_', ':' or '-'", kl.Fleet)
	}
	if kl.Version < 1 {
		bad("version", "want an integer ≥ 1, got %d", kl.Version)
	}
	switch {
	case len(kl.Keys) == 0:
		bad("keys", "want at least one key (a fleet with no signing key can never update again)")
	case len(kl.Keys) > maxListedKeys:
		bad("keys", "at most %d keys, got %d", maxListedKeys, len(kl.Keys))
	}
	seen := map[string]int{}
	for i, k := range kl.Keys {
		p := fmt.Sprintf("keys[%d]", i)
		pub, ok := rawBase64Key(k.PublicKey)
		if !ok {
			bad(p+".public_key", "want 32 bytes in standard base64 (44 characters)")
			continue
		}
		if id := KeyID(pub); id != k.KeyID {
			bad(p+".key_id", "%q is not the id of its public key (%s)", k.KeyID, id)
		}
		if j, dup := seen[k.KeyID]; dup {
			bad(p, "key %s listed twice (also keys[%d])", k.KeyID, j)
		}
		seen[k.KeyID] = i
	}
	if len(errs) > 0 {
		return &ValidationError{Fields: errs}
	}
	return nil
}

// ring returns the key list's keys as a ring. kl must be valid.
func (kl *KeyList) ring() *KeyRing {
	var keys []ed25519.PublicKey
	for _, k := range kl.Keys {
		pub, _ := rawBase64Key(k.PublicKey)
		keys = append(keys, pub)
	}
	r := NewKeyRing(keys...)
	r.source = fmt.Sprintf("key list version %d", kl.Version)
	return r
}

// SignKeyList validates kl and returns its envelope, signed by the root
// key. The root key may not itself be listed: it signs key lists only,
// so a manifest key's compromise never reaches it.
func SignKeyList(kl *KeyList, root ed25519.PrivateKey) ([]byte, error) {
	if err := kl.Validate(); err != nil {
		return nil, err
	}
	rootID := KeyID(root.Public().(ed25519.PublicKey))
	for _, k := range kl.Keys {
		if k.KeyID == rootID {
			return nil, fmt.Errorf("sign key list: the root key %s is listed: keep it for key lists only", rootID)
		}
	}
	raw, err := json.Marshal(kl)
	if err != nil {
		return nil, fmt.Errorf("sign key list: %w", err)
	}
	canonical, err := Canonicalize(raw)
	if err != nil {
		return nil, fmt.Errorf("sign key list: %w", err)
	}
	sig := ed25519.Sign(root, append([]byte(keysContext), canonical...))
	env := KeyListEnvelope{Format: KeyListFormat, Keys: canonical,
		Signatures: []Signature{{KeyID: rootID, Signature: base64.StdEncoding.EncodeToString(sig)}}}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(env); err != nil {
		return nil, fmt.Errorf("sign key list: %w", err)
	}
	return buf.Bytes(), nil
}

// VerifiedKeys is a key list whose signature by the root key verified.
type VerifiedKeys struct {
	List *KeyList
	// Digest is the hex sha256 of the key list's canonical encoding.
	Digest string
	ring   *KeyRing
}

// Ring returns the keys the list vouches for.
func (v *VerifiedKeys) Ring() *KeyRing { return v.ring }

var keyListKeys = shape{known: []string{"fleet", "version", "keys"}, required: []string{"fleet", "version", "keys"}}
var listedKeyKeys = shape{known: []string{"key_id", "public_key"}, required: []string{"key_id", "public_key"}}

// VerifyKeyList parses a key list envelope and checks that the root key
// signed it (other signatures are ignored) and that it is for fleet. It
// refuses, in this order: a malformed envelope (ErrMalformed), no
// signatures (ErrNoSignature), a root signature that does not verify
// (ErrBadSignature), none by the root (ErrUnknownKey), a key list that
// breaks a rule (ErrMalformed), another fleet's (ErrOutOfScope). Versions
// are the Updater's business.
func VerifyKeyList(data []byte, root ed25519.PublicKey, fleet string) (*VerifiedKeys, error) {
	format, body, sigs, err := parseSigned(data, "keys", "key list")
	if err != nil {
		return nil, err
	}
	if format != "1" {
		return nil, fmt.Errorf("%w: key list format %s: this device reads format %d", ErrMalformed, format, KeyListFormat)
	}
	rootRing := NewKeyRing(root)
	rootRing.source = "the root key, fleet.root_key"
	if _, err := checkSignatures(sigs, append([]byte(keysContext), body...), rootRing, "key list"); err != nil {
		return nil, err
	}
	kl, err := decodeKeyList(body)
	if err != nil {
		return nil, err
	}
	if kl.Fleet != fleet {
		return nil, fmt.Errorf("%w: key list for fleet %q, this device is in fleet %q", ErrOutOfScope, kl.Fleet, fleet)
	}
	return &VerifiedKeys{List: kl, Digest: hexDigest(sha256.Sum256(body)), ring: kl.ring()}, nil
}

// ParseKeyList checks that data is a well-formed key list envelope
// without checking its signature (emberctl uses it before publishing).
func ParseKeyList(data []byte) (*KeyList, error) {
	format, body, _, err := parseSigned(data, "keys", "key list")
	if err != nil {
		return nil, err
	}
	if format != "1" {
		return nil, fmt.Errorf("%w: key list format %s: this device reads format %d", ErrMalformed, format, KeyListFormat)
	}
	return decodeKeyList(body)
}

// decodeKeyList decodes a canonical key list strictly and validates it.
func decodeKeyList(canonical []byte) (*KeyList, error) {
	root, err := parseJSON(canonical)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	var missing []string
	if err := keyListKeys.check(root, "", &missing); err != nil {
		return nil, err
	}
	if keys := root.member("keys"); keys != nil && keys.kind == jsonArray {
		for i, k := range keys.arr {
			if err := listedKeyKeys.check(k, fmt.Sprintf("keys[%d].", i), &missing); err != nil {
				return nil, err
			}
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: key list: missing fields: %v", ErrMalformed, missing)
	}
	dec := json.NewDecoder(bytes.NewReader(canonical))
	dec.DisallowUnknownFields()
	kl := &KeyList{}
	if err := dec.Decode(kl); err != nil {
		return nil, fmt.Errorf("%w: key list: %w", ErrMalformed, err)
	}
	if err := kl.Validate(); err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("key list: %w", err)
		}
		return nil, err
	}
	return kl, nil
}

// KeyListTopic is where a fleet's key list is retained.
func KeyListTopic(fleet string) string { return "fleet/v1/" + fleet + "/keys" }
