package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/ember-edge/ember/internal/durable"
)

// LoadKey reads the device's audit signing key from path, making one
// (ed25519, PKCS#8 PEM, mode 0600, written durably) when the file does
// not exist. created says it was made now: the caller records the new
// public key in the chain so that it goes upstream. A file that exists
// but cannot be read as a key is an error (ErrBadKey), never replaced.
func LoadKey(path string) (key ed25519.PrivateKey, created bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, false, fmt.Errorf("make audit key: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, false, fmt.Errorf("make audit key: %w", err)
		}
		err = durable.WriteFile(path, 0o600, func(f *os.File) error {
			return pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
		})
		if err != nil {
			return nil, false, fmt.Errorf("write audit key: %w", err)
		}
		return key, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read audit key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, false, fmt.Errorf("%w: %s holds no PRIVATE KEY block", ErrBadKey, path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %s: %w", ErrBadKey, path, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, false, fmt.Errorf("%w: %s is not an ed25519 key", ErrBadKey, path)
	}
	return ek, false, nil
}

// PublicKeyString is how a public key is written in entries, checkpoints
// and reports: standard base64 of its 32 bytes.
func PublicKeyString(pub ed25519.PublicKey) string {
	return base64.StdEncoding.EncodeToString(pub)
}
