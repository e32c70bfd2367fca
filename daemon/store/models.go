package store

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ModelRecord is a model in the registry.
type ModelRecord struct {
	Name         string    `json:"name"`
	Path         string    `json:"path"`
	SHA256       string    `json:"sha256"`
	Size         int64     `json:"size"`
	Architecture string    `json:"architecture,omitempty"`
	FileType     string    `json:"file_type,omitempty"`
	Parameters   uint64    `json:"parameters,omitempty"`
	License      string    `json:"license,omitempty"`
	Version      string    `json:"version,omitempty"`
	Source       string    `json:"source,omitempty"`
	Default      bool      `json:"default,omitempty"`
	AddedAt      time.Time `json:"added_at"`
}

// DecodeModelRecord parses a stored record.
func DecodeModelRecord(data []byte) (ModelRecord, error) {
	var r ModelRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return ModelRecord{}, fmt.Errorf("decode model record: %w", err)
	}
	if r.Name == "" {
		return ModelRecord{}, fmt.Errorf("decode model record: no name")
	}
	return r, nil
}

// PutModel stores r under r.Name, replacing any record of that name.
func (s *Store) PutModel(r ModelRecord) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("put model %q: %w", r.Name, err)
	}
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketModels).Put([]byte(r.Name), data)
	})
}

// Model returns the record named name, or ErrNotFound.
func (s *Store) Model(name string) (ModelRecord, error) {
	var r ModelRecord
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketModels).Get([]byte(name))
		if v == nil {
			return fmt.Errorf("model %q: %w", name, ErrNotFound)
		}
		var err error
		r, err = DecodeModelRecord(v)
		return err
	})
	return r, err
}

// DeleteModel removes the record named name; removing a missing record is
// not an error.
func (s *Store) DeleteModel(name string) error {
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketModels).Delete([]byte(name))
	})
}

// Models returns every record, ordered by name.
func (s *Store) Models() ([]ModelRecord, error) {
	var out []ModelRecord
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketModels).ForEach(func(k, v []byte) error {
			r, err := DecodeModelRecord(v)
			if err != nil {
				return fmt.Errorf("model %q: %w", k, err)
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

// FileHash caches the sha256 of a file, valid while its size and
// modification time are unchanged.
type FileHash struct {
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime_ns"`
	SHA256  string `json:"sha256"`
}

// FileHash returns the cached hash of path, or ErrNotFound.
func (s *Store) FileHash(path string) (FileHash, error) {
	var h FileHash
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketHashes).Get([]byte(path))
		if v == nil {
			return fmt.Errorf("hash of %q: %w", path, ErrNotFound)
		}
		return json.Unmarshal(v, &h)
	})
	return h, err
}

// PutFileHash caches the hash of path.
func (s *Store) PutFileHash(path string, h FileHash) error {
	data, err := json.Marshal(h)
	if err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketHashes).Put([]byte(path), data)
	})
}
