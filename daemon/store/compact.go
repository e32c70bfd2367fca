package store

import (
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"

	"github.com/ember-edge/ember/internal/durable"
)

// Waste describes how much of the database file is free pages: bbolt
// reuses free pages but never shrinks its file, so space freed by pruning
// stays on disk until the file is compacted.
type Waste struct {
	FileBytes int64
	FreeBytes int64
}

// Ratio is the free fraction of the file.
func (w Waste) Ratio() float64 {
	if w.FileBytes == 0 {
		return 0
	}
	return float64(w.FreeBytes) / float64(w.FileBytes)
}

// Waste returns the file's size and the bytes in its free pages.
func (s *Store) Waste() (Waste, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	fi, err := os.Stat(s.path)
	if err != nil {
		return Waste{}, err
	}
	st := s.db.Stats()
	return Waste{FileBytes: fi.Size(), FreeBytes: int64(st.FreeAlloc)}, nil
}

// CompactIfWasteful compacts when at least minFree bytes and ratio of the
// file are free pages, and reports whether it did.
func (s *Store) CompactIfWasteful(minFree int64, ratio float64) (bool, error) {
	w, err := s.Waste()
	if err != nil {
		return false, err
	}
	if w.FreeBytes < minFree || w.Ratio() < ratio {
		return false, nil
	}
	return true, s.Compact()
}

// Compact copies the live data into a new file and swaps it in with an
// atomic rename, so the database shrinks to what it holds. Writers wait
// meanwhile. A crash at any point leaves either the old file or the new
// one complete; a failure (no room for the copy, say) leaves the old one.
func (s *Store) Compact() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	tmp := s.path + ".compact"
	os.Remove(tmp) // a leftover from a crash mid-compaction
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
	if err != nil {
		return fmt.Errorf("compact store: %w", classify(err))
	}
	if err := bolt.Compact(dst, s.db, 16<<20); err != nil {
		dst.Close()
		os.Remove(tmp)
		return fmt.Errorf("compact store: %w", classify(err))
	}
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("compact store: %w", classify(err))
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("compact store: %w", err)
	}
	renameErr := os.Rename(tmp, s.path)
	if renameErr == nil {
		renameErr = durable.SyncDir(filepath.Dir(s.path))
	}
	// Reopen whichever file is in place now; the old one if the rename
	// failed.
	db, err := openDB(s.path, s.opts)
	if err != nil {
		return fmt.Errorf("compact store: reopen: %w", err)
	}
	s.db = db
	if renameErr != nil {
		os.Remove(tmp)
		return fmt.Errorf("compact store: %w", renameErr)
	}
	return nil
}
