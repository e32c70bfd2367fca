package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// AuditHead is where the audit chain stands: the lowest entry kept, the
// last entry written and the SHA-256 of the last entry's bytes. An empty
// chain has Last 0 and First 1; a chain pruned to nothing has First
// Last+1.
type AuditHead struct {
	First, Last uint64
	Hash        [32]byte
}

// AuditEntry is one stored entry of the chain: its index and its bytes,
// exactly as they were hashed. The store does not read the bytes; the
// audit package owns their format.
type AuditEntry struct {
	Index uint64
	Data  []byte
}

// AuditBuild makes the entry that follows head. When rec is not nil it is
// the entry's outbox copy, with Seq, CreatedAt and Boot already set, and
// build fills its Data. build returns the entry's bytes and, when it wants
// one, a checkpoint to keep under the new entry's index; it may be called
// more than once (see commit) and must not use the store.
type AuditBuild func(head AuditHead, rec *Record) (entry, checkpoint []byte, err error)

// AppendAudit appends one entry to the audit chain, and, when rec is not
// nil, its copy to the outbox, in one group-commit transaction: either
// both are durable or neither is. It returns the new head.
func (s *Store) AppendAudit(ctx context.Context, rec *Record, build AuditBuild, now time.Time) (AuditHead, error) {
	var out AuditHead
	err := s.commit(ctx, func(tx *bolt.Tx) error {
		head := auditHead(tx)
		var entry, cp []byte
		var err error
		if rec != nil {
			_, err = appendRecord(tx, *rec, func(r *Record) error {
				entry, cp, err = build(head, r)
				return err
			}, now)
		} else {
			entry, cp, err = build(head, nil)
		}
		if err != nil {
			return err
		}
		if len(entry) == 0 {
			return fmt.Errorf("audit entry %d: empty", head.Last+1)
		}
		next := AuditHead{First: head.First, Last: head.Last + 1, Hash: sha256.Sum256(entry)}
		if err := tx.Bucket(bucketAudit).Put(u64(next.Last), entry); err != nil {
			return err
		}
		if cp != nil {
			if err := tx.Bucket(bucketAuditCheckpoints).Put(u64(next.Last), cp); err != nil {
				return err
			}
		}
		out = next
		return putAuditHead(tx, next)
	})
	if err == nil && rec != nil {
		s.appended()
	}
	return out, err
}

// AuditHead returns where the chain stands.
func (s *Store) AuditHead() (AuditHead, error) {
	var h AuditHead
	err := s.view(func(tx *bolt.Tx) error {
		h = auditHead(tx)
		return nil
	})
	return h, err
}

// AuditEntries returns up to max entries with an index after after, in
// index order, as stored. It does not check them: that is what verifying
// the chain is for.
func (s *Store) AuditEntries(after uint64, max int) ([]AuditEntry, error) {
	var out []AuditEntry
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil && len(out) < max; k, v = c.Next() {
			out = append(out, AuditEntry{Index: keyIndex(k), Data: append([]byte(nil), v...)})
		}
		return nil
	})
	return out, err
}

// AuditCheckpoints returns every checkpoint kept, by the index it covers,
// oldest first.
func (s *Store) AuditCheckpoints() ([]AuditEntry, error) {
	var out []AuditEntry
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAuditCheckpoints).ForEach(func(k, v []byte) error {
			out = append(out, AuditEntry{Index: keyIndex(k), Data: append([]byte(nil), v...)})
			return nil
		})
	})
	return out, err
}

// CheckpointAudit keeps the checkpoint sign makes of the chain's head,
// unless the head is empty or already has one. sign runs inside the
// transaction and must not use the store. It returns the head and whether
// a checkpoint was written.
func (s *Store) CheckpointAudit(sign func(AuditHead) ([]byte, error)) (AuditHead, bool, error) {
	var head AuditHead
	var wrote bool
	err := s.update(func(tx *bolt.Tx) error {
		head, wrote = auditHead(tx), false
		cps := tx.Bucket(bucketAuditCheckpoints)
		if head.Last == 0 || cps.Get(u64(head.Last)) != nil {
			return nil
		}
		cp, err := sign(head)
		if err != nil {
			return err
		}
		wrote = true
		return cps.Put(u64(head.Last), cp)
	})
	return head, wrote, err
}

// PruneAudit deletes the oldest entries of the chain up to and including
// index upTo, keeping at least keep entries, and at most max per call.
// In the same transaction it keeps the checkpoint sign makes of the last
// entry deleted (its index and the hash of its bytes), so the first entry
// kept stays anchored to a signed hash, and drops the checkpoints below
// that one, which nothing needs any more. It returns how many entries
// went.
func (s *Store) PruneAudit(upTo uint64, keep, max int, sign func(index uint64, hash [32]byte) ([]byte, error)) (int, error) {
	n := 0
	err := s.update(func(tx *bolt.Tx) error {
		n = 0
		head := auditHead(tx)
		if head.Last < head.First {
			return nil
		}
		held := head.Last - head.First + 1
		if held <= uint64(keep) {
			return nil
		}
		upTo = min(upTo, head.Last-uint64(keep), head.First+uint64(max)-1)
		if upTo < head.First {
			return nil
		}
		b := tx.Bucket(bucketAudit)
		var last uint64
		var hash [32]byte
		c := b.Cursor()
		for k, v := c.First(); k != nil && keyIndex(k) <= upTo; k, v = c.First() {
			last, hash = keyIndex(k), sha256.Sum256(v)
			if err := c.Delete(); err != nil {
				return err
			}
			n++
		}
		if n == 0 {
			return nil
		}
		cp, err := sign(last, hash)
		if err != nil {
			return err
		}
		cps := tx.Bucket(bucketAuditCheckpoints)
		if err := cps.Put(u64(last), cp); err != nil {
			return err
		}
		cc := cps.Cursor()
		for k, _ := cc.First(); k != nil && keyIndex(k) < last; k, _ = cc.First() {
			if err := cc.Delete(); err != nil {
				return err
			}
		}
		head.First = last + 1
		return putAuditHead(tx, head)
	})
	return n, err
}

func auditHead(tx *bolt.Tx) AuditHead {
	m := tx.Bucket(bucketAuditMeta)
	h := AuditHead{First: max(getUint(m, keyFirst), 1), Last: getUint(m, keyLast)}
	copy(h.Hash[:], m.Get(keyHead))
	return h
}

func putAuditHead(tx *bolt.Tx, h AuditHead) error {
	m := tx.Bucket(bucketAuditMeta)
	if err := putUint(m, keyFirst, h.First); err != nil {
		return err
	}
	if err := putUint(m, keyLast, h.Last); err != nil {
		return err
	}
	return m.Put(keyHead, h.Hash[:])
}

// keyIndex reads a big-endian index key; a key of another length (which
// the store never writes) reads as 0, which no entry has.
func keyIndex(k []byte) uint64 {
	if len(k) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}
