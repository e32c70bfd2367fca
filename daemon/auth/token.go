package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/ember-edge/ember/daemon/store"
)

// A token reads "ember_<id>_<secret>": the prefix lets secret scanners
// and people recognise it, the id (8 random bytes, hex) finds its record
// without a scan, and the secret (32 bytes from crypto/rand, base64url)
// is what proves possession. Only the secret's SHA-256 is stored: a
// 256-bit random secret needs no slow hash, since nothing can be guessed.
const (
	tokenPrefix = "ember_"
	idBytes     = 8
	secretBytes = 32
	idChars     = 2 * idBytes
	secretChars = 43 // base64url of 32 bytes, unpadded
	tokenLen    = len(tokenPrefix) + idChars + 1 + secretChars
)

var tokenNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// CheckTokenName returns ErrBadTokenName unless name is 1-64 letters,
// digits, '.', '_' or '-', starting with a letter or digit.
func CheckTokenName(name string) error {
	if !tokenNamePattern.MatchString(name) {
		return fmt.Errorf("%q: %w", name, ErrBadTokenName)
	}
	return nil
}

// ParseToken splits a token into its id and secret. It looks at the
// form only; Tokens.Verify checks the secret against the store.
func ParseToken(s string) (id string, secret []byte, err error) {
	if len(s) != tokenLen || !strings.HasPrefix(s, tokenPrefix) {
		return "", nil, ErrMalformedToken
	}
	rest := s[len(tokenPrefix):]
	if rest[idChars] != '_' {
		return "", nil, ErrMalformedToken
	}
	id = rest[:idChars]
	if _, err := hex.DecodeString(id); err != nil || strings.ToLower(id) != id {
		return "", nil, ErrMalformedToken
	}
	secret, err = base64.RawURLEncoding.Strict().DecodeString(rest[idChars+1:])
	if err != nil || len(secret) != secretBytes {
		return "", nil, ErrMalformedToken
	}
	return id, secret, nil
}

func hashSecret(secret []byte) []byte {
	h := sha256.Sum256(secret)
	return h[:]
}

// TokenStore keeps token records; *store.Store is one.
type TokenStore interface {
	AddToken(store.TokenRecord) error
	Token(id string) (store.TokenRecord, error)
	Tokens() ([]store.TokenRecord, error)
	RevokeToken(name string, at time.Time) (store.TokenRecord, error)
}

// Tokens creates, checks, lists and revokes bearer tokens.
type Tokens struct {
	st  TokenStore
	now func() time.Time
}

// NewTokens returns tokens kept in st; now is the clock (nil: time.Now).
func NewTokens(st TokenStore, now func() time.Time) *Tokens {
	if now == nil {
		now = time.Now
	}
	return &Tokens{st: st, now: now}
}

// Create makes a token called name with role, valid for ttl (0: until
// revoked), and returns it: the only time the secret exists outside the
// caller's hands. by names the creator, for `token ls`.
func (t *Tokens) Create(name string, role Role, ttl time.Duration, by string) (string, store.TokenRecord, error) {
	if err := CheckTokenName(name); err != nil {
		return "", store.TokenRecord{}, err
	}
	if role < Viewer || role > Admin {
		return "", store.TokenRecord{}, fmt.Errorf("%s: %w", role, ErrUnknownRole)
	}
	if ttl < 0 {
		return "", store.TokenRecord{}, fmt.Errorf("token %q: expiry %s is negative", name, ttl)
	}
	raw := make([]byte, idBytes+secretBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", store.TokenRecord{}, fmt.Errorf("token %q: %w", name, err)
	}
	id, secret := hex.EncodeToString(raw[:idBytes]), raw[idBytes:]
	now := t.now().UTC()
	rec := store.TokenRecord{ID: id, Name: name, Role: role.String(), Hash: hashSecret(secret), CreatedAt: now, CreatedBy: by}
	if ttl > 0 {
		rec.ExpiresAt = now.Add(ttl)
	}
	if err := t.st.AddToken(rec); err != nil {
		return "", store.TokenRecord{}, err
	}
	return tokenPrefix + id + "_" + encodeSecret(secret), rec, nil
}

func encodeSecret(secret []byte) string { return base64.RawURLEncoding.EncodeToString(secret) }

// Verify checks a presented token and returns its record and role. The
// secret's hash is compared in constant time.
func (t *Tokens) Verify(token string) (store.TokenRecord, Role, error) {
	id, secret, err := ParseToken(token)
	if err != nil {
		return store.TokenRecord{}, None, err
	}
	rec, err := t.st.Token(id)
	if errors.Is(err, store.ErrNotFound) {
		return store.TokenRecord{}, None, ErrUnknownToken
	}
	if err != nil {
		return store.TokenRecord{}, None, err
	}
	if subtle.ConstantTimeCompare(hashSecret(secret), rec.Hash) != 1 {
		return store.TokenRecord{}, None, ErrUnknownToken
	}
	if !rec.RevokedAt.IsZero() {
		return rec, None, fmt.Errorf("%q: %w", rec.Name, ErrRevokedToken)
	}
	if !rec.ExpiresAt.IsZero() && !t.now().Before(rec.ExpiresAt) {
		return rec, None, fmt.Errorf("%q expired at %s: %w", rec.Name, rec.ExpiresAt.Format(time.RFC3339), ErrExpiredToken)
	}
	role, err := ParseRole(rec.Role)
	if err != nil {
		return rec, None, fmt.Errorf("token %q: %w", rec.Name, err)
	}
	return rec, role, nil
}

// List returns every token, revoked and expired ones included.
func (t *Tokens) List() ([]store.TokenRecord, error) { return t.st.Tokens() }

// Revoke revokes the live token called name.
func (t *Tokens) Revoke(name string) (store.TokenRecord, error) {
	return t.st.RevokeToken(name, t.now().UTC())
}
