package store

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The kinds of outbox record.
const (
	KindResult     = "result"
	KindDeadLetter = "deadletter"
	KindTelemetry  = "telemetry"
	KindAudit      = "audit"
)

// Classifications say whether a record may leave the device.
const (
	ClassShared = "shared"
	ClassLocal  = "local"
)

// Record is one outbox entry: append-only, ordered by Seq.
type Record struct {
	// Seq is the outbox sequence number, global across priorities and
	// strictly increasing: the order of events even where the wall clock
	// is wrong (field devices often boot without a correct time).
	Seq      uint64 `json:"seq"`
	Kind     string `json:"kind"`
	DeviceID string `json:"device_id,omitempty"`
	Pipeline string `json:"pipeline,omitempty"`
	JobID    uint64 `json:"job_id,omitempty"`
	Priority int    `json:"priority"`
	// Classification is "shared" or "local"; local records never leave.
	Classification string `json:"classification,omitempty"`
	// CreatedAt is the wall clock when the record was written; Boot is
	// the store's boot number then.
	CreatedAt time.Time `json:"created_at"`
	Boot      uint64    `json:"boot"`
	// Data is the record's content: for a result, the message published
	// for it.
	Data json.RawMessage `json:"data"`
}

// DecodeRecord parses a stored record.
func DecodeRecord(data []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return Record{}, fmt.Errorf("decode record: %w", err)
	}
	if r.Seq == 0 || r.Kind == "" {
		return Record{}, fmt.Errorf("decode record: missing seq or kind")
	}
	return r, nil
}

// Append adds a record to the outbox in a group commit and returns it with
// its sequence number. Seq, CreatedAt and Boot are set here; fill, when
// set, completes the record once they are known.
func (s *Store) Append(ctx context.Context, rec Record, fill func(*Record) error, now time.Time) (Record, error) {
	var out Record
	err := s.commit(ctx, func(tx *bolt.Tx) error {
		var err error
		out, err = appendRecord(tx, rec, fill, now)
		return err
	})
	if err == nil {
		s.appended()
	}
	return out, err
}

// appendRecord writes rec inside tx. The boot number is read from the
// transaction, so records written by any Store on this file agree.
func appendRecord(tx *bolt.Tx, rec Record, fill func(*Record) error, now time.Time) (Record, error) {
	meta := tx.Bucket(bucketOutboxMeta)
	seq := getUint(meta, keySeq) + 1
	rec.Seq, rec.CreatedAt = seq, now
	rec.Boot = getUint(tx.Bucket(bucketMeta), keyBoots)
	rec.Priority = clampPriority(rec.Priority)
	if rec.Classification == "" {
		rec.Classification = ClassShared
	}
	if fill != nil {
		if err := fill(&rec); err != nil {
			return Record{}, err
		}
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return Record{}, err
	}
	if err := tx.Bucket(bucketOutbox).Bucket(priorityKey(rec.Priority)).Put(u64(seq), data); err != nil {
		return Record{}, err
	}
	if err := putUint(meta, keySeq, seq); err != nil {
		return Record{}, err
	}
	if err := putUint(meta, keyCount, getUint(meta, keyCount)+1); err != nil {
		return Record{}, err
	}
	if err := addPending(meta, rec.Priority, 1, int64(len(data))); err != nil {
		return Record{}, err
	}
	if err := addUnconfirmed(meta, rec.Priority, 1, int64(len(data))); err != nil {
		return Record{}, err
	}
	return rec, putUint(meta, keyBytes, getUint(meta, keyBytes)+uint64(len(data)))
}

// addPending adjusts the unsynced counters of class p.
func addPending(meta *bolt.Bucket, p int, n, size int64) error {
	c, b := getUint(meta, pendingCountKey(p)), getUint(meta, pendingBytesKey(p))
	if err := putUint(meta, pendingCountKey(p), uint64(max(int64(c)+n, 0))); err != nil {
		return err
	}
	return putUint(meta, pendingBytesKey(p), uint64(max(int64(b)+size, 0)))
}

// Record returns the record with sequence number seq.
func (s *Store) Record(seq uint64) (Record, error) {
	var out Record
	err := s.view(func(tx *bolt.Tx) error {
		ob := tx.Bucket(bucketOutbox)
		for p := range Priorities {
			if v := ob.Bucket(priorityKey(p)).Get(u64(seq)); v != nil {
				var err error
				out, err = DecodeRecord(v)
				return err
			}
		}
		return fmt.Errorf("record %d: %w", seq, ErrNotFound)
	})
	return out, err
}

// RecordFilter selects records for Records.
type RecordFilter struct {
	Kind     string
	Pipeline string
	// AfterSeq starts after this sequence number.
	AfterSeq uint64
	Limit    int
	// Keep, when set, drops the records it returns false for before they
	// count against Limit: the API hides records a caller may not read.
	Keep func(Record) bool
}

// Records returns records matching f in sequence order, merging the
// priority classes.
func (s *Store) Records(f RecordFilter) ([]Record, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	var out []Record
	err := s.view(func(tx *bolt.Tx) error {
		return mergeClasses(tx, f.AfterSeq, func(v []byte) (bool, error) {
			r, err := DecodeRecord(v)
			if err != nil {
				return false, err
			}
			if (f.Kind == "" || r.Kind == f.Kind) && (f.Pipeline == "" || r.Pipeline == f.Pipeline) && (f.Keep == nil || f.Keep(r)) {
				out = append(out, r)
			}
			return len(out) < f.Limit, nil
		})
	})
	return out, err
}

// mergeClasses visits the records of every priority class after seq in
// global sequence order until visit returns false.
func mergeClasses(tx *bolt.Tx, after uint64, visit func(v []byte) (bool, error)) error {
	h := &cursorHeap{}
	ob := tx.Bucket(bucketOutbox)
	for p := range Priorities {
		c := ob.Bucket(priorityKey(p)).Cursor()
		k, v := c.Seek(u64(after + 1))
		if k != nil {
			heap.Push(h, classCursor{c: c, k: k, v: v})
		}
	}
	for h.Len() > 0 {
		top := (*h)[0]
		more, err := visit(top.v)
		if err != nil || !more {
			return err
		}
		if k, v := top.c.Next(); k != nil {
			(*h)[0] = classCursor{c: top.c, k: k, v: v}
			heap.Fix(h, 0)
		} else {
			heap.Pop(h)
		}
	}
	return nil
}

type classCursor struct {
	c    *bolt.Cursor
	k, v []byte
}

type cursorHeap []classCursor

func (h cursorHeap) Len() int           { return len(h) }
func (h cursorHeap) Less(i, j int) bool { return bytes.Compare(h[i].k, h[j].k) < 0 }
func (h cursorHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *cursorHeap) Push(x any)        { *h = append(*h, x.(classCursor)) }
func (h *cursorHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// OutboxStats describe the outbox.
type OutboxStats struct {
	Records uint64
	Bytes   uint64
	LastSeq uint64
	// Oldest is the creation time of the oldest record held.
	Oldest time.Time
}

// OutboxStats returns the outbox's counters.
func (s *Store) OutboxStats() (OutboxStats, error) {
	var st OutboxStats
	err := s.view(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketOutboxMeta)
		st.Records, st.Bytes, st.LastSeq = getUint(meta, keyCount), getUint(meta, keyBytes), getUint(meta, keySeq)
		return mergeClasses(tx, 0, func(v []byte) (bool, error) {
			r, err := DecodeRecord(v)
			st.Oldest = r.CreatedAt
			return false, err
		})
	})
	return st, err
}

// Limits bound the outbox.
type Limits struct {
	MaxRecords uint64
	MaxBytes   uint64
	MaxAge     time.Duration
}

// Over reports whether the outbox holds more than l allows (age aside).
func (s *Store) Over(l Limits) (bool, error) {
	var over bool
	err := s.view(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketOutboxMeta)
		over = (l.MaxRecords > 0 && getUint(meta, keyCount) >= l.MaxRecords) ||
			(l.MaxBytes > 0 && getUint(meta, keyBytes) >= l.MaxBytes)
		return nil
	})
	return over, err
}

// PruneOutbox deletes records older than l.MaxAge, then, while the outbox
// is over its record or byte limit, the oldest records of the lowest
// priority first. An audit record (the upstream copy of an audit chain
// entry) is never deleted before the fleet confirmed it: a flood of other
// records cannot push the audit trail out before upstream has it. keep,
// when set, spares records from the age rule only;
// it runs inside the transaction and must not use the store. It deletes
// at most max records per call, so a large backlog is pruned in bounded
// transactions, and returns how many went.
func (s *Store) PruneOutbox(l Limits, now time.Time, max int, keep func(Record) bool) (int, error) {
	n := 0
	err := s.update(func(tx *bolt.Tx) error {
		n = 0
		meta := tx.Bucket(bucketOutboxMeta)
		ob := tx.Bucket(bucketOutbox)
		count, size := getUint(meta, keyCount), getUint(meta, keyBytes)
		synced, confirmed := tx.Bucket(bucketSynced), tx.Bucket(bucketConfirmed)
		after := func(b *bolt.Bucket, p int, k []byte) bool {
			return binary.BigEndian.Uint64(k) > getUint(b, priorityKey(p))
		}
		// An audit record stays until the fleet has it: confirmed, which
		// with uplink.confirm: broker is the broker's PUBACK.
		unsynced := func(p int, k []byte) bool { return after(confirmed, p, k) }
		dropped := getUint(meta, keyDropped)
		drop := func(p int, b *bolt.Bucket, k, v []byte) error {
			if after(synced, p, k) {
				if err := addPending(meta, p, -1, -int64(len(v))); err != nil {
					return err
				}
			}
			if after(confirmed, p, k) {
				if err := addUnconfirmed(meta, p, -1, -int64(len(v))); err != nil {
					return err
				}
				dropped++
			}
			if err := b.Delete(k); err != nil {
				return err
			}
			count, size, n = count-1, size-min(size, uint64(len(v))), n+1
			return nil
		}
		if l.MaxAge > 0 {
			cutoff := now.Add(-l.MaxAge)
			for p := range Priorities {
				b := ob.Bucket(priorityKey(p))
				c := b.Cursor()
				for k, v := c.First(); k != nil && n < max; {
					r, err := DecodeRecord(v)
					if err != nil {
						return err
					}
					if !r.CreatedAt.Before(cutoff) {
						break
					}
					if (keep != nil && keep(r)) || (r.Kind == KindAudit && unsynced(p, k)) {
						k, v = c.Next()
						continue
					}
					key := append([]byte(nil), k...)
					if err := drop(p, b, key, v); err != nil {
						return err
					}
					k, v = c.Seek(key)
				}
			}
		}
		over := func() bool {
			return (l.MaxRecords > 0 && count > l.MaxRecords) || (l.MaxBytes > 0 && size > l.MaxBytes)
		}
		for p := 0; p < Priorities && over() && n < max; p++ {
			b := ob.Bucket(priorityKey(p))
			c := b.Cursor()
			for k, v := c.First(); k != nil && over() && n < max; {
				if unsynced(p, k) && isAuditRecord(v) {
					k, v = c.Next()
					continue
				}
				key := append([]byte(nil), k...)
				if err := drop(p, b, key, v); err != nil {
					return err
				}
				k, v = c.Seek(key)
			}
		}
		if err := putUint(meta, keyDropped, dropped); err != nil {
			return err
		}
		if err := putUint(meta, keyCount, count); err != nil {
			return err
		}
		return putUint(meta, keyBytes, size)
	})
	return n, err
}

// auditPrefix is how json.Marshal begins an audit record: Record's first
// fields are seq and kind, in that order.
var auditPrefix = []byte(`,"kind":"` + KindAudit + `"`)

// isAuditRecord reports whether the encoded record v is of kind audit,
// without decoding it: the eviction loop reads the kind of every record it
// drops. A record that does not start as the store writes them is decoded.
func isAuditRecord(v []byte) bool {
	const seqKey = `{"seq":`
	if bytes.HasPrefix(v, []byte(seqKey)) {
		i := len(seqKey)
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
		}
		if bytes.HasPrefix(v[i:], []byte(`,"kind":`)) {
			return bytes.HasPrefix(v[i:], auditPrefix)
		}
	}
	r, err := DecodeRecord(v)
	return err == nil && r.Kind == KindAudit
}
