package store

import (
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A record of the outbox is in one of three states per class, told apart
// by two cursors (layout.go):
//
//	seq ≤ confirmed            confirmed: the fleet's collector stored it
//	confirmed < seq ≤ synced   sent: the broker acknowledged it (PUBACK)
//	synced < seq               unsent
//
// confirmed ≤ synced always holds. Retention (PruneSynced) deletes only
// confirmed records; storage pressure (PruneOutbox) may drop any record
// and counts the unconfirmed ones it drops.

func unconfCountKey(p int) []byte { return append([]byte("ccount"), priorityKey(p)...) }
func unconfBytesKey(p int) []byte { return append([]byte("cbytes"), priorityKey(p)...) }

// keyDropped counts records dropped before they were confirmed.
var keyDropped = []byte("dropped_unconfirmed")

// initConfirmed gives a database written before confirmed delivery a
// confirmed cursor per class equal to its sync cursor: what was synced
// then counted as delivered, and stays so.
func initConfirmed(tx *bolt.Tx) error {
	conf, synced, meta := tx.Bucket(bucketConfirmed), tx.Bucket(bucketSynced), tx.Bucket(bucketOutboxMeta)
	for p := range Priorities {
		if conf.Get(priorityKey(p)) != nil {
			continue
		}
		if err := putUint(conf, priorityKey(p), getUint(synced, priorityKey(p))); err != nil {
			return err
		}
		if err := putUint(meta, unconfCountKey(p), getUint(meta, pendingCountKey(p))); err != nil {
			return err
		}
		if err := putUint(meta, unconfBytesKey(p), getUint(meta, pendingBytesKey(p))); err != nil {
			return err
		}
	}
	return nil
}

// addUnconfirmed adjusts the not-yet-confirmed counters of class p.
func addUnconfirmed(meta *bolt.Bucket, p int, n, size int64) error {
	c, b := getUint(meta, unconfCountKey(p)), getUint(meta, unconfBytesKey(p))
	if err := putUint(meta, unconfCountKey(p), uint64(max(int64(c)+n, 0))); err != nil {
		return err
	}
	return putUint(meta, unconfBytesKey(p), uint64(max(int64(b)+size, 0)))
}

// MarkConfirmed records durably that the fleet stored every record of
// class p up to seq (or, classified local, had nothing to store). The
// cursor only moves forward and never past the sync cursor: a
// confirmation of records the uplink has not yet seen acknowledged by
// the broker waits for that (the uplink holds it) so that the cursors
// keep their order. It returns the confirmed cursor after the call.
func (s *Store) MarkConfirmed(p int, seq uint64) (uint64, error) {
	p = clampPriority(p)
	var out uint64
	err := s.update(func(tx *bolt.Tx) error {
		conf, meta := tx.Bucket(bucketConfirmed), tx.Bucket(bucketOutboxMeta)
		from := getUint(conf, priorityKey(p))
		seq = min(seq, getUint(tx.Bucket(bucketSynced), priorityKey(p)))
		out = from
		if seq <= from {
			return nil
		}
		n, size := countRange(tx, p, from, seq)
		if err := addUnconfirmed(meta, p, -n, -size); err != nil {
			return err
		}
		out = seq
		return putUint(conf, priorityKey(p), seq)
	})
	return out, err
}

// countRange counts the records of class p in (from, to] and their size.
func countRange(tx *bolt.Tx, p int, from, to uint64) (n, size int64) {
	c := tx.Bucket(bucketOutbox).Bucket(priorityKey(p)).Cursor()
	for k, v := c.Seek(u64(from + 1)); k != nil && binary.BigEndian.Uint64(k) <= to; k, v = c.Next() {
		n, size = n+1, size+int64(len(v))
	}
	return n, size
}

// Rewind moves class p's sync cursor back to to (never below the
// confirmed cursor), so that the records sent but not confirmed are read
// and sent again. It returns the cursor after the call.
func (s *Store) Rewind(p int, to uint64) (uint64, error) {
	p = clampPriority(p)
	var out uint64
	err := s.update(func(tx *bolt.Tx) error {
		synced, meta := tx.Bucket(bucketSynced), tx.Bucket(bucketOutboxMeta)
		cur := getUint(synced, priorityKey(p))
		to = max(to, getUint(tx.Bucket(bucketConfirmed), priorityKey(p)))
		out = cur
		if to >= cur {
			return nil
		}
		n, size := countRange(tx, p, to, cur)
		if err := addPending(meta, p, n, size); err != nil {
			return err
		}
		out = to
		return putUint(synced, priorityKey(p), to)
	})
	return out, err
}

// Cursors returns class p's sync and confirmed cursors.
func (s *Store) Cursors(p int) (synced, confirmed uint64, err error) {
	p = clampPriority(p)
	err = s.view(func(tx *bolt.Tx) error {
		synced = getUint(tx.Bucket(bucketSynced), priorityKey(p))
		confirmed = getUint(tx.Bucket(bucketConfirmed), priorityKey(p))
		return nil
	})
	return synced, confirmed, err
}

// oldestAfter returns the creation time of class p's first record after
// seq, if it is at most through.
func oldestAfter(ob *bolt.Bucket, p int, seq, through uint64) (time.Time, error) {
	k, v := ob.Bucket(priorityKey(p)).Cursor().Seek(u64(seq + 1))
	if k == nil || binary.BigEndian.Uint64(k) > through {
		return time.Time{}, nil
	}
	r, err := DecodeRecord(v)
	return r.CreatedAt, err
}
