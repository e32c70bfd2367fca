package store

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TokenRecord is an API bearer token as the store keeps it: its id, its
// name and role, and the SHA-256 of its secret. The secret itself is
// never stored; daemon/auth makes and checks tokens.
type TokenRecord struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
	// Hash is the SHA-256 of the token's secret part.
	Hash      []byte    `json:"hash"`
	CreatedAt time.Time `json:"created_at"`
	// CreatedBy names who created it, as the audit log does.
	CreatedBy string `json:"created_by,omitempty"`
	// ExpiresAt is zero for a token that does not expire.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// RevokedAt is zero for a token that was not revoked.
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// DecodeTokenRecord parses a stored token record.
func DecodeTokenRecord(data []byte) (TokenRecord, error) {
	var r TokenRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return TokenRecord{}, fmt.Errorf("decode token record: %w", err)
	}
	if r.ID == "" || r.Name == "" {
		return TokenRecord{}, fmt.Errorf("decode token record: no id or name")
	}
	return r, nil
}

// AddToken stores r under its id. A token whose name a live (unrevoked)
// token already has is refused with ErrExists, as is a second token with
// the same id.
func (s *Store) AddToken(r TokenRecord) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("add token %q: %w", r.Name, err)
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		if b.Get([]byte(r.ID)) != nil {
			return fmt.Errorf("token id %s: %w", r.ID, ErrExists)
		}
		err := b.ForEach(func(_, v []byte) error {
			t, err := DecodeTokenRecord(v)
			if err != nil {
				return err
			}
			if t.Name == r.Name && t.RevokedAt.IsZero() {
				return fmt.Errorf("token %q: %w (revoke it first)", r.Name, ErrExists)
			}
			return nil
		})
		if err != nil {
			return err
		}
		return b.Put([]byte(r.ID), data)
	})
}

// Token returns the token with id, or ErrNotFound.
func (s *Store) Token(id string) (TokenRecord, error) {
	var r TokenRecord
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketTokens).Get([]byte(id))
		if v == nil {
			return fmt.Errorf("token id %s: %w", id, ErrNotFound)
		}
		var err error
		r, err = DecodeTokenRecord(v)
		return err
	})
	return r, err
}

// Tokens returns every token, revoked ones included, by name and then
// creation time.
func (s *Store) Tokens() ([]TokenRecord, error) {
	var out []TokenRecord
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).ForEach(func(_, v []byte) error {
			r, err := DecodeTokenRecord(v)
			if err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].CreatedAt.Before(out[j].CreatedAt)
	})
	return out, err
}

// RevokeToken marks the live token called name revoked at at and returns
// it; ErrNotFound when no live token has that name.
func (s *Store) RevokeToken(name string, at time.Time) (TokenRecord, error) {
	var out TokenRecord
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		var key []byte
		err := b.ForEach(func(k, v []byte) error {
			r, err := DecodeTokenRecord(v)
			if err != nil {
				return err
			}
			if r.Name == name && r.RevokedAt.IsZero() {
				key, out = append([]byte(nil), k...), r
			}
			return nil
		})
		if err != nil {
			return err
		}
		if key == nil {
			return fmt.Errorf("token %q: %w", name, ErrNotFound)
		}
		out.RevokedAt = at
		data, err := json.Marshal(out)
		if err != nil {
			return err
		}
		return b.Put(key, data)
	})
	return out, err
}
