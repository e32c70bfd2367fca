package store

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// openTest opens a store in a temp dir and checks its consistency when the
// test ends, as bbolt's own tests do.
func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "ember.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Check(); err != nil {
			t.Errorf("consistency check: %v", err)
		}
		s.Close()
	})
	return s
}

func TestModelRegistryRoundTrip(t *testing.T) {
	s := openTest(t)
	rec := ModelRecord{Name: "qwen", Path: "/m/q.gguf", SHA256: "ab", Size: 42, AddedAt: time.Unix(1700000000, 0).UTC()}
	if err := s.PutModel(rec); err != nil {
		t.Fatal(err)
	}
	got, err := s.Model("qwen")
	if err != nil || got != rec {
		t.Fatalf("Model = %+v, %v; want %+v", got, err, rec)
	}
	if _, err := s.Model("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing model: %v, want ErrNotFound", err)
	}
	if err := s.PutModel(ModelRecord{Name: "a", AddedAt: rec.AddedAt}); err != nil {
		t.Fatal(err)
	}
	all, _ := s.Models()
	if len(all) != 2 || all[0].Name != "a" || all[1].Name != "qwen" {
		t.Errorf("Models not ordered by name: %+v", all)
	}
	if err := s.DeleteModel("qwen"); err != nil {
		t.Fatal(err)
	}
	if all, _ := s.Models(); len(all) != 1 {
		t.Errorf("after delete: %+v", all)
	}
}

func TestRecordsSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ember.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetSetting("k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.Setting("k"); err != nil || string(v) != "v" {
		t.Fatalf("Setting after reopen = %q, %v", v, err)
	}
	for range 2 { // the second removes nothing, and is no error
		if err := s.DeleteSetting("k"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Setting("k"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Setting after DeleteSetting: %v, want ErrNotFound", err)
		}
	}
}

func TestSecondOpenIsRefusedWhileLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ember.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = Open(path, Options{LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ember.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Write the schema mark a future emberd would leave.
	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint64(nil, schemaVersion+1))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(path, Options{}); !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Open of a newer database = %v, want ErrNewerSchema", err)
	}
}

func TestOpenRefusesAFileThatIsNotADatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ember.db")
	if err := os.WriteFile(path, []byte("this is not bbolt"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{}); err == nil {
		t.Fatal("Open accepted a garbage file")
	}
}

func FuzzDecodeModelRecord(f *testing.F) {
	f.Add([]byte(`{"name":"a","path":"/x","sha256":"00","size":1,"added_at":"2024-01-01T00:00:00Z"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeModelRecord(data)
		if err == nil && r.Name == "" {
			t.Fatal("decoded a record without a name")
		}
	})
}
