package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Overflow is what happens when a pipeline's backlog is full.
type Overflow string

// The overflow policies.
const (
	// OverflowReject refuses the new message.
	OverflowReject Overflow = "reject"
	// OverflowDropOldest drops the pipeline's oldest queued job.
	OverflowDropOldest Overflow = "drop_oldest"
)

// Redelivery identifies a QoS 1 message by client and packet id, so that
// a redelivery (DUP) of a message already committed is recognised.
type Redelivery struct {
	Client   string
	PacketID uint16
	Dup      bool
	// Hash is the sha256 of topic and payload: a packet id is reused for
	// new messages, the content tells a redelivery from a reuse.
	Hash [32]byte
}

// Enqueue describes a job to add.
type Enqueue struct {
	Job Job
	// DedupKey, when set, refuses a second job with the same key within
	// DedupWindow: the first job's id is returned instead.
	DedupKey    string
	DedupWindow time.Duration
	Redelivery  *Redelivery
	// CoalesceWindow, with Job.Coalesce set, holds the job back that long;
	// a newer message with the same key arriving meanwhile replaces its
	// request instead of adding a job.
	CoalesceWindow time.Duration
	// Backlog bounds the pipeline's queued jobs; 0 means no bound.
	Backlog  int
	Overflow Overflow
}

// EnqueueResult says what became of an Enqueue.
type EnqueueResult struct {
	ID uint64
	// Duplicate: an earlier job had the same key or was the same packet.
	Duplicate bool
	// Coalesced: the request replaced that of a queued job.
	Coalesced bool
	// Dropped is the job dropped to make room (drop_oldest), or 0.
	Dropped uint64
	// Job is the job as committed, new or coalesced into; zero for a
	// duplicate. Callers need not read it back.
	Job Job
}

// Enqueue adds a job durably, in a group commit. When it returns nil the
// job will run (or was a duplicate of one that will) even if the process
// dies next: the caller may acknowledge the message.
func (s *Store) Enqueue(ctx context.Context, e Enqueue, now time.Time) (EnqueueResult, error) {
	return s.EnqueueAsync(ctx, e, now)()
}

// EnqueueAsync queues the job for the group commit and returns a wait
// for the outcome Enqueue would have returned. Jobs queued one after
// another commit in that order: a connection's messages may be queued
// as they arrive and acknowledged as their waits return, in order.
func (s *Store) EnqueueAsync(ctx context.Context, e Enqueue, now time.Time) func() (EnqueueResult, error) {
	// The job is numbered and encoded here, in the caller's goroutine, so
	// that the group commit (one goroutine holding bbolt's only writer)
	// does no JSON. A number left unused (a duplicate, a coalesce, an
	// error) is a gap in the ids, nothing more.
	j := e.Job
	j.Priority = clampPriority(j.Priority)
	j.ID, j.State, j.CreatedAt, j.UpdatedAt = s.jobSeq.Add(1), JobQueued, now, now
	if j.Coalesce != "" && e.CoalesceWindow > 0 {
		j.NotBefore = now.Add(e.CoalesceWindow)
	}
	data := appendJob(make([]byte, 0, 256+len(j.Request)), j)
	var res EnqueueResult
	wait, err := s.queue(ctx, func(tx *bolt.Tx) error {
		res = EnqueueResult{}
		return enqueue(tx, e, j, data, now, &res)
	})
	if err != nil {
		return func() (EnqueueResult, error) { return EnqueueResult{}, err }
	}
	return func() (EnqueueResult, error) {
		err := wait()
		return res, err
	}
}

// enqueue commits j (encoded as data) unless it is a duplicate or
// coalesces into a queued job.
func enqueue(tx *bolt.Tx, e Enqueue, j Job, data []byte, now time.Time, res *EnqueueResult) error {
	if id, ok := duplicateOf(tx, e, now); ok {
		res.ID, res.Duplicate = id, true
		return nil
	}
	if j.Coalesce != "" {
		if merged, ok := coalesceInto(tx, j, now); ok {
			res.ID, res.Coalesced, res.Job = merged.ID, true, merged
			return remember(tx, e, merged.ID, now)
		}
	}
	if e.Backlog > 0 && int(getUint(tx.Bucket(bucketBacklog), []byte(j.Pipeline))) >= e.Backlog {
		if e.Overflow != OverflowDropOldest {
			return fmt.Errorf("pipeline %q: %w (%d queued)", j.Pipeline, ErrBacklogFull, e.Backlog)
		}
		dropped, err := dropOldest(tx, j.Pipeline, now)
		if err != nil {
			return err
		}
		res.Dropped = dropped
	}
	jobs := tx.Bucket(bucketJobs)
	if err := jobs.Put(u64(j.ID), data); err != nil {
		return err
	}
	// The bucket's sequence keeps the highest id given out, for the next
	// Open.
	if jobs.Sequence() < j.ID {
		if err := jobs.SetSequence(j.ID); err != nil {
			return err
		}
	}
	if err := addQueued(tx, j); err != nil {
		return err
	}
	res.ID, res.Job = j.ID, j
	return remember(tx, e, j.ID, now)
}

// duplicateOf finds an earlier job for the same request id, or for the
// same QoS 1 packet redelivered.
func duplicateOf(tx *bolt.Tx, e Enqueue, now time.Time) (uint64, bool) {
	if e.DedupKey != "" {
		if v := tx.Bucket(bucketDedup).Get([]byte(e.DedupKey)); len(v) == 16 {
			if exp := int64(binary.BigEndian.Uint64(v)); exp > now.UnixNano() {
				return binary.BigEndian.Uint64(v[8:]), true
			}
		}
	}
	if r := e.Redelivery; r != nil && r.Dup {
		if v := tx.Bucket(bucketPIDs).Get(pidKey(r, e.Job.Pipeline)); len(v) == 40 && bytes.Equal(v[:32], r.Hash[:]) {
			return binary.BigEndian.Uint64(v[32:]), true
		}
	}
	return 0, false
}

// remember records the request id and packet of a committed message.
func remember(tx *bolt.Tx, e Enqueue, id uint64, now time.Time) error {
	if e.DedupKey != "" && e.DedupWindow > 0 {
		exp := now.Add(e.DedupWindow).UnixNano()
		val := append(u64(uint64(exp)), u64(id)...)
		if err := tx.Bucket(bucketDedup).Put([]byte(e.DedupKey), val); err != nil {
			return err
		}
		if err := tx.Bucket(bucketDedupExp).Put(append(u64(uint64(exp)), e.DedupKey...), nil); err != nil {
			return err
		}
	}
	if r := e.Redelivery; r != nil {
		return tx.Bucket(bucketPIDs).Put(pidKey(r, e.Job.Pipeline), append(r.Hash[:], u64(id)...))
	}
	return nil
}

// pidKey is per pipeline: a message that fans out to two pipelines is two
// jobs, and a redelivery must find each.
func pidKey(r *Redelivery, pipeline string) []byte {
	k := append(append(append([]byte(r.Client), 0), pipeline...), 0)
	return binary.BigEndian.AppendUint16(k, r.PacketID)
}

// coalesceInto replaces the request of the queued job holding j's
// coalesce key, if there is one.
func coalesceInto(tx *bolt.Tx, j Job, now time.Time) (Job, bool) {
	v := tx.Bucket(bucketCoalesce).Get(pipelineKey(j.Pipeline, []byte(j.Coalesce)))
	if len(v) != 8 {
		return Job{}, false
	}
	old, err := getJob(tx, binary.BigEndian.Uint64(v))
	if err != nil || old.State != JobQueued {
		return Job{}, false
	}
	old.Request, old.UpdatedAt, old.Source = j.Request, now, j.Source
	old.Merged++
	if err := putJob(tx, old); err != nil {
		return Job{}, false
	}
	return old, true
}

// dropOldest fails the pipeline's oldest queued job to make room.
func dropOldest(tx *bolt.Tx, pipeline string, now time.Time) (uint64, error) {
	c := tx.Bucket(bucketPQueue).Cursor()
	prefix := pipelineKey(pipeline, nil)
	k, _ := c.Seek(prefix)
	if k == nil || !bytes.HasPrefix(k, prefix) || len(k) != len(prefix)+8 {
		return 0, nil
	}
	old, err := getJob(tx, binary.BigEndian.Uint64(k[len(prefix):]))
	if err != nil {
		return 0, err
	}
	if err := removeQueued(tx, old); err != nil {
		return 0, err
	}
	old.State, old.Error, old.UpdatedAt = JobFailed, "dropped: the pipeline's backlog was full (overflow: drop_oldest)", now
	return old.ID, putJob(tx, old)
}
