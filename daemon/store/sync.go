package store

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// PendingRecords returns up to max records of priority class p that the
// uplink has not synced yet, in sequence order.
func (s *Store) PendingRecords(p, max int) ([]Record, error) {
	p = clampPriority(p)
	var out []Record
	err := s.view(func(tx *bolt.Tx) error {
		after := getUint(tx.Bucket(bucketSynced), priorityKey(p))
		c := tx.Bucket(bucketOutbox).Bucket(priorityKey(p)).Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil && len(out) < max; k, v = c.Next() {
			r, err := DecodeRecord(v)
			if err != nil {
				return fmt.Errorf("record %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// MarkSynced records durably that every record of class p up to seq was
// delivered upstream (or skipped, being local). The cursor only moves
// forward: an older seq is a no-op, so a late acknowledgement cannot
// resend what a later one covered.
func (s *Store) MarkSynced(p int, seq uint64) error {
	p = clampPriority(p)
	return s.update(func(tx *bolt.Tx) error {
		synced, meta := tx.Bucket(bucketSynced), tx.Bucket(bucketOutboxMeta)
		from := getUint(synced, priorityKey(p))
		if seq <= from {
			return nil
		}
		var n, size int64
		c := tx.Bucket(bucketOutbox).Bucket(priorityKey(p)).Cursor()
		for k, v := c.Seek(u64(from + 1)); k != nil && binary.BigEndian.Uint64(k) <= seq; k, v = c.Next() {
			n, size = n+1, size+int64(len(v))
		}
		if err := addPending(meta, p, -n, -size); err != nil {
			return err
		}
		return putUint(synced, priorityKey(p), seq)
	})
}

// SyncCursor returns class p's cursor.
func (s *Store) SyncCursor(p int) (uint64, error) {
	var seq uint64
	err := s.view(func(tx *bolt.Tx) error {
		seq = getUint(tx.Bucket(bucketSynced), priorityKey(clampPriority(p)))
		return nil
	})
	return seq, err
}

// SyncBacklog describes what the uplink has yet to send, and what it
// sent that the fleet has yet to confirm (confirm.go). Fields are only
// added: uplink.Backlog mirrors it.
type SyncBacklog struct {
	// Records and Bytes are the unsent records.
	Records uint64
	Bytes   uint64
	// Oldest is the creation time of the oldest unsynced record.
	Oldest time.Time
	// Unconfirmed are the records sent (the broker acknowledged them) but
	// not yet confirmed by the fleet's collector; UnconfirmedBytes their
	// size; OldestUnconfirmed the creation time of the oldest.
	Unconfirmed, UnconfirmedBytes uint64
	OldestUnconfirmed             time.Time
	// Confirmed are the records held that the fleet confirmed (retention
	// deletes them in time).
	Confirmed uint64
	// DroppedUnconfirmed counts, since the database was made, records
	// the store's limits dropped before the fleet confirmed them.
	DroppedUnconfirmed uint64
}

// SyncBacklog returns the unsynced and unconfirmed records' count, size
// and age.
func (s *Store) SyncBacklog() (SyncBacklog, error) {
	var b SyncBacklog
	err := s.view(func(tx *bolt.Tx) error {
		meta, synced, conf, ob := tx.Bucket(bucketOutboxMeta), tx.Bucket(bucketSynced), tx.Bucket(bucketConfirmed), tx.Bucket(bucketOutbox)
		var notConfirmed uint64
		for p := range Priorities {
			pc, pb := getUint(meta, pendingCountKey(p)), getUint(meta, pendingBytesKey(p))
			cc, cb := getUint(meta, unconfCountKey(p)), getUint(meta, unconfBytesKey(p))
			b.Records += pc
			b.Bytes += pb
			b.Unconfirmed += cc - min(cc, pc)
			b.UnconfirmedBytes += cb - min(cb, pb)
			notConfirmed += cc
			cur := getUint(synced, priorityKey(p))
			oldest, err := oldestAfter(ob, p, cur, ^uint64(0))
			if err != nil {
				return err
			}
			if !oldest.IsZero() && (b.Oldest.IsZero() || oldest.Before(b.Oldest)) {
				b.Oldest = oldest
			}
			oldest, err = oldestAfter(ob, p, getUint(conf, priorityKey(p)), cur)
			if err != nil {
				return err
			}
			if !oldest.IsZero() && (b.OldestUnconfirmed.IsZero() || oldest.Before(b.OldestUnconfirmed)) {
				b.OldestUnconfirmed = oldest
			}
		}
		total := getUint(meta, keyCount)
		b.Confirmed = total - min(total, notConfirmed)
		b.DroppedUnconfirmed = getUint(meta, keyDropped)
		return nil
	})
	return b, err
}

// Synced reports whether record r is covered by its class's cursor.
func (s *Store) Synced(r Record) (bool, error) {
	cur, err := s.SyncCursor(r.Priority)
	return r.Seq <= cur, err
}

// PruneSynced deletes confirmed records created before cutoff (at most
// max) and returns how many went: once the fleet has stored a record, the
// device keeps it only for the sync retention. A record the broker
// acknowledged but the fleet has not confirmed is kept (confirm.go).
func (s *Store) PruneSynced(cutoff time.Time, max int) (int, error) {
	n := 0
	err := s.update(func(tx *bolt.Tx) error {
		n = 0
		meta, conf, ob := tx.Bucket(bucketOutboxMeta), tx.Bucket(bucketConfirmed), tx.Bucket(bucketOutbox)
		count, size := getUint(meta, keyCount), getUint(meta, keyBytes)
		for p := 0; p < Priorities && n < max; p++ {
			cur := getUint(conf, priorityKey(p))
			c := ob.Bucket(priorityKey(p)).Cursor()
			for k, v := c.First(); k != nil && n < max && binary.BigEndian.Uint64(k) <= cur; {
				r, err := DecodeRecord(v)
				if err != nil {
					return err
				}
				if !r.CreatedAt.Before(cutoff) {
					break
				}
				key := append([]byte(nil), k...)
				if err := c.Delete(); err != nil {
					return err
				}
				count, size, n = count-1, size-min(size, uint64(len(v))), n+1
				k, v = c.Seek(key)
			}
		}
		if err := putUint(meta, keyCount, count); err != nil {
			return err
		}
		return putUint(meta, keyBytes, size)
	})
	return n, err
}
