package store

import (
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestConfirmedCursor walks records of one class through unsent → sent →
// confirmed, with a rewind, retention and a drop under storage pressure.
func TestConfirmedCursor(t *testing.T) {
	s := openTest(t)
	var recs []Record
	for i := range 6 {
		recs = append(recs, appendRec(t, s, KindResult, 4, t0.Add(time.Duration(i)*time.Minute)))
	}
	backlog := func(unsent, unconfirmed, confirmed uint64) SyncBacklog {
		t.Helper()
		b, err := s.SyncBacklog()
		if err != nil {
			t.Fatal(err)
		}
		if b.Records != unsent || b.Unconfirmed != unconfirmed || b.Confirmed != confirmed {
			t.Fatalf("backlog unsent %d unconfirmed %d confirmed %d, want %d %d %d",
				b.Records, b.Unconfirmed, b.Confirmed, unsent, unconfirmed, confirmed)
		}
		return b
	}
	backlog(6, 0, 0)
	if err := s.MarkSynced(4, recs[3].Seq); err != nil {
		t.Fatal(err)
	}
	b := backlog(2, 4, 0)
	if !b.OldestUnconfirmed.Equal(t0) || !b.Oldest.Equal(recs[4].CreatedAt) {
		t.Fatalf("oldest unconfirmed %v, oldest unsent %v", b.OldestUnconfirmed, b.Oldest)
	}
	// Retention keeps sent records that are not confirmed.
	if n, err := s.PruneSynced(t0.Add(time.Hour), 100); err != nil || n != 0 {
		t.Fatalf("pruned %d (%v) unconfirmed records", n, err)
	}
	// A confirmation never passes the sync cursor.
	if c, err := s.MarkConfirmed(4, recs[5].Seq); err != nil || c != recs[3].Seq {
		t.Fatalf("confirmed to %d (%v), want %d", c, err, recs[3].Seq)
	}
	backlog(2, 0, 4)
	if c, _ := s.MarkConfirmed(4, recs[1].Seq); c != recs[3].Seq {
		t.Fatalf("confirmed cursor moved back to %d", c)
	}
	if err := s.MarkSynced(4, recs[5].Seq); err != nil {
		t.Fatal(err)
	}
	backlog(0, 2, 4)
	// A rewind sends the unconfirmed again, but stops at the confirmed.
	if cur, err := s.Rewind(4, 0); err != nil || cur != recs[3].Seq {
		t.Fatalf("rewound to %d (%v), want %d", cur, err, recs[3].Seq)
	}
	if pend, _ := s.PendingRecords(4, 10); len(pend) != 2 || pend[0].Seq != recs[4].Seq {
		t.Fatalf("pending after rewind: %+v", pend)
	}
	backlog(2, 0, 4)
	if n, err := s.PruneSynced(t0.Add(time.Hour), 100); err != nil || n != 4 {
		t.Fatalf("pruned %d (%v), want the 4 confirmed", n, err)
	}
	backlog(2, 0, 0)
	// Storage pressure drops what it must and counts the unconfirmed.
	if n, err := s.PruneOutbox(Limits{MaxRecords: 1}, t0, 100, nil); err != nil || n != 1 {
		t.Fatalf("dropped %d (%v)", n, err)
	}
	if b := backlog(1, 0, 0); b.DroppedUnconfirmed != 1 {
		t.Fatalf("dropped unconfirmed %d, want 1", b.DroppedUnconfirmed)
	}
}

// TestConfirmedCursorMigration: a database from before the confirmed
// cursor takes what it had synced as confirmed.
func TestConfirmedCursorMigration(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "ember.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	r1 := appendRec(t, s, KindResult, 2, t0)
	appendRec(t, s, KindResult, 2, t0)
	if err := s.MarkSynced(2, r1.Seq); err != nil {
		t.Fatal(err)
	}
	// Forget the confirmed cursor, as an old database lacks it.
	if err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketConfirmed); err != nil {
			return err
		}
		_, err := tx.CreateBucket(bucketConfirmed)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(s.Path(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.Check(); err != nil {
		t.Error(err)
	}
	if _, c, _ := s2.Cursors(2); c != r1.Seq {
		t.Fatalf("confirmed %d after migration, want %d", c, r1.Seq)
	}
	if b, _ := s2.SyncBacklog(); b.Records != 1 || b.Unconfirmed != 0 || b.Confirmed != 1 {
		t.Fatalf("backlog after migration %+v", b)
	}
}
