package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ember-edge/ember/daemon/store"
)

// chain is a test's state dir: the store file and the device key.
type chain struct {
	dir  string
	key  ed25519.PrivateKey
	opts Options
}

func newChain(t *testing.T, opts Options) *chain {
	t.Helper()
	dir := t.TempDir()
	key, created, err := LoadKey(filepath.Join(dir, "audit.key"))
	if err != nil || !created {
		t.Fatalf("LoadKey = %v, created %v", err, created)
	}
	opts.Key, opts.DeviceID = key, "dev-1"
	return &chain{dir: dir, key: key, opts: opts}
}

func (c *chain) dbPath() string { return filepath.Join(c.dir, "ember.db") }

// open opens the store and a log on it; both close, after a bbolt
// consistency check, when the test ends unless closed before.
func (c *chain) open(t *testing.T) (*store.Store, *Log) {
	t.Helper()
	st, err := store.Open(c.dbPath(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Check(); err != nil && !errors.Is(err, bolt.ErrDatabaseNotOpen) {
			t.Errorf("consistency check: %v", err)
		}
		st.Close()
	})
	o := c.opts
	o.Store = st
	return st, New(o)
}

// write appends n entries named action-<i>.
func write(t *testing.T, l *Log, n int) {
	t.Helper()
	for i := range n {
		if err := l.Write(context.Background(), fmt.Sprintf("test.action-%d", i), "tester", nil, map[string]any{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
}

// tamper opens the closed store's file with bbolt directly, as an
// attacker with the file would, and runs fn on the audit buckets.
func (c *chain) tamper(t *testing.T, fn func(entries, meta, cps *bolt.Bucket) error) {
	t.Helper()
	db, err := bolt.Open(c.dbPath(), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		return fn(tx.Bucket([]byte("audit")), tx.Bucket([]byte("auditmeta")), tx.Bucket([]byte("auditcp")))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func key(i uint64) []byte {
	return []byte{byte(i >> 56), byte(i >> 48), byte(i >> 40), byte(i >> 32), byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
}

// verify reopens the store and verifies the chain.
func (c *chain) verify(t *testing.T) Report {
	t.Helper()
	st, l := c.open(t)
	defer st.Close()
	r, err := l.Verify()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func wantBad(t *testing.T, r Report, index uint64) {
	t.Helper()
	if r.OK || r.FirstBad == nil || *r.FirstBad != index {
		fb := "nil"
		if r.FirstBad != nil {
			fb = fmt.Sprint(*r.FirstBad)
		}
		t.Fatalf("verify: ok %v, first_bad %s (%s); want first_bad %d", r.OK, fb, r.Reason, index)
	}
}

func wantOK(t *testing.T, r Report) {
	t.Helper()
	if !r.OK {
		t.Fatalf("verify: first_bad %d: %s", *r.FirstBad, r.Reason)
	}
}
