package fleet

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// KeyRing holds the public keys a device trusts, by key id.
type KeyRing struct {
	keys map[string]ed25519.PublicKey
	// source says where the keys came from, for refusals: the config, or
	// key list version N.
	source string
}

// NewKeyRing returns a ring of keys. A key given twice is kept once.
func NewKeyRing(keys ...ed25519.PublicKey) *KeyRing {
	r := &KeyRing{keys: map[string]ed25519.PublicKey{}}
	for _, k := range keys {
		r.keys[KeyID(k)] = k
	}
	return r
}

// Key returns the key with id.
func (r *KeyRing) Key(id string) (ed25519.PublicKey, bool) {
	if r == nil {
		return nil, false
	}
	k, ok := r.keys[id]
	return k, ok
}

// IDs returns the ids of the ring's keys, sorted.
func (r *KeyRing) IDs() []string {
	if r == nil {
		return nil
	}
	ids := make([]string, 0, len(r.keys))
	for id := range r.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// describe lists the ring's key ids and where they came from.
func (r *KeyRing) describe() string {
	ids := r.IDs()
	s := "no key"
	if len(ids) > 0 {
		s = strings.Join(ids, ", ")
	}
	if r != nil && r.source != "" {
		s += " (" + r.source + ")"
	}
	return s
}

// Len returns the number of keys.
func (r *KeyRing) Len() int {
	if r == nil {
		return 0
	}
	return len(r.keys)
}

// LoadTrustedKeys builds the ring from the config's fleet.trusted_keys.
// An entry that is exactly 44 characters of standard base64 decoding to 32
// bytes is a raw public key; anything else is the path of a public-key
// file (see ParsePublicKey), relative paths resolved against dir. Every
// bad entry is reported, at once.
func LoadTrustedKeys(entries []string, dir string) (*KeyRing, error) {
	var keys []ed25519.PublicKey
	var errs []error
	for i, e := range entries {
		k, err := LoadPublicKey(e, dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("trusted_keys[%d]: %w", i, err))
			continue
		}
		keys = append(keys, k)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return NewKeyRing(keys...), nil
}

// LoadPublicKey reads one key as fleet.trusted_keys and fleet.root_key
// give it: 44 characters of base64 (a raw key), or the path of a key
// file, relative paths resolved against dir.
func LoadPublicKey(entry, dir string) (ed25519.PublicKey, error) {
	if k, ok := rawBase64Key(entry); ok {
		return k, nil
	}
	path := entry
	if !filepath.IsAbs(path) && dir != "" {
		path = filepath.Join(dir, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParsePublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

func rawBase64Key(s string) (ed25519.PublicKey, bool) {
	if len(s) != 44 {
		return nil, false
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, false
	}
	return ed25519.PublicKey(b), true
}

// ParsePublicKey reads an ed25519 public key from a PEM "PUBLIC KEY"
// block (PKIX, what `emberctl fleet keygen` and `openssl pkey -pubout`
// write) or from the standard base64 of its 32 raw bytes.
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	if block, _ := pem.Decode(data); block != nil {
		if block.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("PEM block is %q, want \"PUBLIC KEY\"", block.Type)
		}
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse public key: %w", err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("public key is %T, want ed25519", k)
		}
		return pub, nil
	}
	if k, ok := rawBase64Key(strings.TrimSpace(string(data))); ok {
		return k, nil
	}
	return nil, errors.New("not an ed25519 public key: want a PEM \"PUBLIC KEY\" block or 32 bytes in base64")
}

// ParsePrivateKey reads an ed25519 private key from a PEM "PRIVATE KEY"
// block (PKCS #8).
func ParsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block: want a \"PRIVATE KEY\" block as `emberctl fleet keygen` writes")
	}
	if block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("PEM block is %q, want \"PRIVATE KEY\"", block.Type)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key is %T, want ed25519", k)
	}
	return priv, nil
}

// MarshalPrivateKey encodes a private key as a PEM "PRIVATE KEY" block.
func MarshalPrivateKey(k ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalPublicKey encodes a public key as a PEM "PUBLIC KEY" block.
func MarshalPublicKey(k ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
