package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Store is the open database.
type Store struct {
	path string
	opts Options

	// mu guards db: every transaction holds it shared; compaction holds
	// it exclusively while it swaps the file.
	mu sync.RWMutex
	db *bolt.DB

	boot    uint64 // this process's boot number, counted in meta/boots
	commits chan *commitReq
	closeMu sync.RWMutex // guards closed against commit
	closed  bool
	stop    chan struct{}
	stopped chan struct{}
	batches atomic.Uint64
	batched atomic.Uint64
	// jobSeq is the last job id given out; the jobs bucket's sequence
	// holds the highest committed.
	jobSeq atomic.Uint64
	// onAppend is told after outbox records are committed (the uplink's
	// Poke); it must not block.
	onAppend atomic.Pointer[func()]
}

// OnAppend sets fn to be called after records are committed to the
// outbox. fn must not block.
func (s *Store) OnAppend(fn func()) { s.onAppend.Store(&fn) }

func (s *Store) appended() {
	if fn := s.onAppend.Load(); fn != nil {
		(*fn)()
	}
}

// Options tune Open.
type Options struct {
	// LockTimeout is how long Open waits for another process to release
	// the database; 0 means one second.
	LockTimeout time.Duration
	// MaxBatch bounds the writes one group commit carries; 0 means 1024.
	MaxBatch int
}

// Open opens or creates the database at path, creating its directory and
// buckets as needed, and counts one more boot.
func Open(path string, opts Options) (*Store, error) {
	if opts.LockTimeout == 0 {
		opts.LockTimeout = time.Second
	}
	if opts.MaxBatch == 0 {
		opts.MaxBatch = 1024
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	db, err := openDB(path, opts)
	if err != nil {
		return nil, err
	}
	s := &Store{path: path, opts: opts, db: db,
		commits: make(chan *commitReq, opts.MaxBatch), stop: make(chan struct{}), stopped: make(chan struct{})}
	if err := s.init(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	go s.committer()
	return s, nil
}

func openDB(path string, opts Options) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, FreelistType: bolt.FreelistMapType})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: %w (is another emberd using this state_dir?)", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, classify(err))
	}
	return db, nil
}

func (s *Store) init() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range topBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		for p := range Priorities {
			if _, err := tx.Bucket(bucketOutbox).CreateBucketIfNotExists(priorityKey(p)); err != nil {
				return fmt.Errorf("create outbox bucket: %w", err)
			}
		}
		if err := initConfirmed(tx); err != nil {
			return fmt.Errorf("confirmed cursors: %w", err)
		}
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keySchema); len(v) == 8 {
			if got := binary.BigEndian.Uint64(v); got > schemaVersion {
				return fmt.Errorf("%w (schema %d, this emberd reads up to %d)", ErrNewerSchema, got, schemaVersion)
			}
		}
		jobs := tx.Bucket(bucketJobs)
		last := jobs.Sequence()
		if k, _ := jobs.Cursor().Last(); len(k) == 8 {
			last = max(last, binary.BigEndian.Uint64(k))
		}
		s.jobSeq.Store(last)
		s.boot = getUint(meta, keyBoots) + 1
		if err := putUint(meta, keyBoots, s.boot); err != nil {
			return err
		}
		return meta.Put(keySchema, binary.BigEndian.AppendUint64(nil, schemaVersion))
	})
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Boot returns this process's boot number: 1 for the first Open of the
// database, one more for each later one. With a record's sequence number
// it orders events on a device whose wall clock cannot be trusted.
func (s *Store) Boot() uint64 { return s.boot }

// Close lets no new write in, commits those already queued, and closes the
// database. Every write that returned nil is already on disk.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return ErrClosed
	}
	s.closed = true
	s.closeMu.Unlock()
	close(s.stop)
	<-s.stopped
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.db.Close()
}

// view runs fn in a read-only transaction.
func (s *Store) view(fn func(*bolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.db.View(fn)
}

// update runs fn in its own read-write transaction.
func (s *Store) update(fn func(*bolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return classify(s.db.Update(fn))
}

// classify marks a full disk, so callers can tell backpressure from a
// broken database.
func classify(err error) error {
	if err == nil || errors.Is(err, ErrDiskFull) {
		return err
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrDiskFull, err)
	}
	return err
}

// Check walks every page and returns the inconsistencies bbolt finds,
// joined; nil means the file is sound.
func (s *Store) Check() error {
	return s.view(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
}

// Setting returns the value stored under key, or ErrNotFound.
func (s *Store) Setting(key string) ([]byte, error) {
	var out []byte
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketSettings).Get([]byte(key))
		if v == nil {
			return fmt.Errorf("setting %q: %w", key, ErrNotFound)
		}
		out = append([]byte(nil), v...)
		return nil
	})
	return out, err
}

// SetSetting stores value under key.
func (s *Store) SetSetting(key string, value []byte) error {
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSettings).Put([]byte(key), value)
	})
}

// DeleteSetting removes key; removing a key never set is not an error.
func (s *Store) DeleteSetting(key string) error {
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSettings).Delete([]byte(key))
	})
}

func getUint(b *bolt.Bucket, key []byte) uint64 {
	if v := b.Get(key); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func putUint(b *bolt.Bucket, key []byte, v uint64) error {
	return b.Put(key, binary.BigEndian.AppendUint64(nil, v))
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
