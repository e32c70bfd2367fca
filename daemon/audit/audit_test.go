package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ember-edge/ember/daemon/store"
)

// TestTamperingIsNamed is the auditor's test: with the daemon stopped,
// the bbolt file is opened directly and one entry is edited, deleted or
// moved; verify must fail at that entry.
func TestTamperingIsNamed(t *testing.T) {
	cases := []struct {
		name string
		bad  uint64
		fn   func(entries, meta, cps *bolt.Bucket) error
	}{
		{"edit content", 5, func(e, _, _ *bolt.Bucket) error {
			return e.Put(key(5), bytes.Replace(e.Get(key(5)), []byte("tester"), []byte("nobody"), 1))
		}},
		{"edit prev", 5, func(e, _, _ *bolt.Bucket) error {
			v := append([]byte(nil), e.Get(key(5))...)
			i := bytes.Index(v, []byte(`"prev":"`)) + len(`"prev":"`)
			v[i] ^= 1
			return e.Put(key(5), v)
		}},
		{"edit to garbage", 5, func(e, _, _ *bolt.Bucket) error { return e.Put(key(5), []byte("{")) }},
		{"edit newest", 10, func(e, _, _ *bolt.Bucket) error {
			return e.Put(key(10), bytes.Replace(e.Get(key(10)), []byte("tester"), []byte("nobody"), 1))
		}},
		{"delete", 5, func(e, _, _ *bolt.Bucket) error { return e.Delete(key(5)) }},
		{"delete newest", 10, func(e, _, _ *bolt.Bucket) error { return e.Delete(key(10)) }},
		{"reorder", 5, func(e, _, _ *bolt.Bucket) error {
			a, b := append([]byte(nil), e.Get(key(5))...), append([]byte(nil), e.Get(key(6))...)
			if err := e.Put(key(5), b); err != nil {
				return err
			}
			return e.Put(key(6), a)
		}},
		{"reorder and renumber", 5, func(e, _, _ *bolt.Bucket) error {
			// Swap two entries' content but keep their indexes in place:
			// the links break instead.
			a, b := e.Get(key(5)), e.Get(key(6))
			a2 := bytes.Replace(b, []byte(`"index":6`), []byte(`"index":5`), 1)
			b2 := bytes.Replace(a, []byte(`"index":5`), []byte(`"index":6`), 1)
			if err := e.Put(key(5), a2); err != nil {
				return err
			}
			return e.Put(key(6), b2)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newChain(t, Options{})
			st, l := c.open(t)
			write(t, l, 10)
			wantOK(t, mustVerify(t, l))
			st.Close()
			c.tamper(t, tc.fn)
			wantBad(t, c.verify(t), tc.bad)
		})
	}
}

func mustVerify(t *testing.T, l *Log) Report {
	t.Helper()
	r, err := l.Verify()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestTruncationNeedsACheckpoint: deleting the oldest entries is
// detected unless a valid checkpoint covers the cut, as pruning leaves.
func TestTruncationNeedsACheckpoint(t *testing.T) {
	t.Run("oldest cut without checkpoint", func(t *testing.T) {
		c := newChain(t, Options{})
		st, l := c.open(t)
		write(t, l, 10)
		if _, err := l.Checkpoint(); err != nil { // a head checkpoint at 10
			t.Fatal(err)
		}
		write(t, l, 5)
		st.Close()
		c.tamper(t, func(e, m, _ *bolt.Bucket) error {
			for i := uint64(1); i <= 4; i++ {
				if err := e.Delete(key(i)); err != nil {
					return err
				}
			}
			return m.Put([]byte("first"), key(5)) // cover tracks
		})
		wantBad(t, c.verify(t), 1)
	})
	t.Run("cut past the prune checkpoint", func(t *testing.T) {
		c := newChain(t, Options{MaxEntries: 6})
		st, l := c.open(t)
		write(t, l, 10)
		if n, err := l.Prune(); err != nil || n != 4 {
			t.Fatalf("Prune = %d, %v; want 4", n, err)
		}
		r := mustVerify(t, l)
		wantOK(t, r)
		if r.First != 5 || r.Entries != 6 || r.Anchor != 4 {
			t.Fatalf("after prune: %+v", r)
		}
		write(t, l, 2)
		st.Close()
		c.tamper(t, func(e, _, _ *bolt.Bucket) error {
			for i := uint64(5); i <= 6; i++ {
				if err := e.Delete(key(i)); err != nil {
					return err
				}
			}
			return nil
		})
		wantBad(t, c.verify(t), 5)
	})
	t.Run("forged checkpoint covers nothing", func(t *testing.T) {
		c := newChain(t, Options{})
		st, l := c.open(t)
		write(t, l, 10)
		st.Close()
		_, other, _ := ed25519.GenerateKey(rand.Reader)
		c.tamper(t, func(e, m, cps *bolt.Bucket) error {
			h := sha(e.Get(key(4)))
			for i := uint64(1); i <= 4; i++ {
				if err := e.Delete(key(i)); err != nil {
					return err
				}
			}
			cp, err := signCheckpoint(other, 4, h, time.Now())
			if err != nil {
				return err
			}
			return cps.Put(key(4), cp)
		})
		r := c.verify(t)
		wantBad(t, r, 1)
		if r.BadCheckpoints != 1 {
			t.Errorf("bad checkpoints = %d, want 1", r.BadCheckpoints)
		}
	})
	t.Run("newest cut past a checkpoint", func(t *testing.T) {
		c := newChain(t, Options{})
		st, l := c.open(t)
		write(t, l, 10)
		if _, err := l.Checkpoint(); err != nil {
			t.Fatal(err)
		}
		st.Close()
		c.tamper(t, func(e, m, _ *bolt.Bucket) error {
			h := sha(e.Get(key(7)))
			for i := uint64(8); i <= 10; i++ {
				if err := e.Delete(key(i)); err != nil {
					return err
				}
			}
			// Rewrite the head as if 7 were the last entry.
			if err := m.Put([]byte("last"), key(7)); err != nil {
				return err
			}
			return m.Put([]byte("head"), h[:])
		})
		wantBad(t, c.verify(t), 8)
	})
}

func sha(b []byte) [32]byte {
	var h [32]byte
	copy(h[:], mustHex(Hash(b)))
	return h
}

// TestChainSurvivesRestart: index and prev hash continue across a close
// and a reopen, and the key is the same one.
func TestChainSurvivesRestart(t *testing.T) {
	c := newChain(t, Options{})
	st, l := c.open(t)
	write(t, l, 3)
	st.Close()
	key2, created, err := LoadKey(c.dir + "/audit.key")
	if err != nil || created || !key2.Equal(c.key) {
		t.Fatalf("LoadKey again: created %v, err %v, same %v", created, err, key2.Equal(c.key))
	}
	st, l = c.open(t)
	write(t, l, 2)
	es, err := l.List(0, 100)
	if err != nil || len(es) != 5 {
		t.Fatalf("List = %d entries, %v", len(es), err)
	}
	raw, _ := st.AuditEntries(2, 1)
	if es[3].Index != 4 || es[3].Prev != Hash(raw[0].Data) || es[3].Boot != 2 || es[2].Boot != 1 {
		t.Fatalf("entry 4 after restart: %+v; want index 4, prev = hash of entry 3, boot 2", es[3])
	}
	wantOK(t, mustVerify(t, l))
}

// TestFloodKeepsAudit: a flood of high-priority records into an outbox
// over its limits (what a drop_oldest pipeline's results do) does not
// evict the audit entries' upstream copies before they are synced, nor
// touch the chain.
func TestFloodKeepsAudit(t *testing.T) {
	c := newChain(t, Options{Upstream: true})
	st, l := c.open(t)
	write(t, l, 5)
	ctx := context.Background()
	limits := store.Limits{MaxRecords: 20}
	for i := range 500 {
		if _, err := st.Append(ctx, store.Record{Kind: store.KindResult, Priority: 9, Pipeline: "alarms"}, func(r *store.Record) error {
			r.Data = []byte(`{"n":1}`)
			return nil
		}, time.Now()); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			if _, err := st.PruneOutbox(limits, time.Now(), 1000, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := st.PruneOutbox(store.Limits{MaxRecords: 20, MaxAge: time.Nanosecond}, time.Now().Add(time.Hour), 100000, nil); err != nil {
		t.Fatal(err)
	}
	rs, err := st.Records(store.RecordFilter{Kind: store.KindAudit, Limit: 100})
	if err != nil || len(rs) != 5 {
		t.Fatalf("audit records after the flood: %d, %v; want 5", len(rs), err)
	}
	wantOK(t, mustVerify(t, l))
	// Once the fleet confirmed them, they may go like any other record.
	if err := st.MarkSynced(Priority, rs[4].Seq); err != nil {
		t.Fatal(err)
	}
	if _, err := st.MarkConfirmed(Priority, rs[4].Seq); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PruneOutbox(store.Limits{MaxRecords: 1}, time.Now(), 1000, nil); err != nil {
		t.Fatal(err)
	}
	if rs, _ := st.Records(store.RecordFilter{Kind: store.KindAudit, Limit: 100}); len(rs) != 1 {
		t.Errorf("synced audit records over the limit: %d kept, want 1", len(rs))
	}
	if es, _ := l.List(0, 100); len(es) != 5 {
		t.Errorf("chain after pruning the outbox: %d entries, want 5", len(es))
	}
}

// TestPruneWaitsForSync: with an uplink, only entries whose upstream
// copy was acknowledged are pruned, however far over the bound.
func TestPruneWaitsForSync(t *testing.T) {
	c := newChain(t, Options{Upstream: true, MaxEntries: 5})
	st, l := c.open(t)
	write(t, l, 20)
	if n, err := l.Prune(); err != nil || n != 0 {
		t.Fatalf("Prune before sync = %d, %v; want 0", n, err)
	}
	es, _ := l.List(0, 100)
	if err := st.MarkSynced(Priority, es[9].Seq); err != nil { // entries 1-10 synced
		t.Fatal(err)
	}
	if n, err := l.Prune(); err != nil || n != 10 {
		t.Fatalf("Prune after sync = %d, %v; want 10", n, err)
	}
	r := mustVerify(t, l)
	wantOK(t, r)
	if r.First != 11 || r.Anchor < 10 {
		t.Fatalf("after prune: %+v", r)
	}
	// The copy carries the entry and its hash.
	rec, err := st.Record(es[10].Seq)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := st.AuditEntries(10, 1)
	if !bytes.Contains(rec.Data, []byte(`"hash":"`+Hash(raw[0].Data)+`"`)) || !bytes.Contains(rec.Data, []byte(`"index":11`)) {
		t.Errorf("upstream copy %s lacks index 11 or its hash", rec.Data)
	}
}

func TestWriteFailureIsReturned(t *testing.T) {
	c := newChain(t, Options{})
	st, l := c.open(t)
	st.Close()
	err := l.Write(context.Background(), "model.load", "tester", nil, nil)
	if !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Write on a closed store = %v, want ErrClosed", err)
	}
	if s := l.Stats(); s.Failures != 1 || s.LastError == "" {
		t.Errorf("stats = %+v, want one failure", s)
	}
	if err := l.Write(context.Background(), "x", "y", nil, map[string]any{"f": func() {}}); err == nil {
		t.Error("an entry that cannot be encoded was written")
	}
}

func TestBadKeyIsNotReplaced(t *testing.T) {
	path := t.TempDir() + "/audit.key"
	if err := writeFile(path, []byte("not a key")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadKey(path); !errors.Is(err, ErrBadKey) {
		t.Fatalf("LoadKey = %v, want ErrBadKey", err)
	}
}
