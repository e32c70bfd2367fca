package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// JobState is where a job is in its life.
type JobState string

// The job states. queued → running → done | failed; queued → cancelled.
// A running job found at start (the process died) goes back to queued:
// inference is repeatable, and a job's result is written in the same
// transaction that marks it done, so a job yields exactly one result.
const (
	JobQueued    JobState = "queued"
	JobRunning   JobState = "running"
	JobDone      JobState = "done"
	JobFailed    JobState = "failed"
	JobCancelled JobState = "cancelled"
)

// Terminal reports whether a job in this state will not change again.
func (s JobState) Terminal() bool { return s == JobDone || s == JobFailed || s == JobCancelled }

// Job is an accepted request for inference.
type Job struct {
	ID       uint64 `json:"id"`
	Pipeline string `json:"pipeline"`
	Source   string `json:"source,omitempty"`
	// Model is the model the job needs; "" means the default one.
	Model    string   `json:"model,omitempty"`
	Priority int      `json:"priority"`
	State    JobState `json:"state"`
	// Request is the job's inference request, opaque to the store.
	Request   json.RawMessage `json:"request"`
	Key       string          `json:"key,omitempty"`
	Coalesce  string          `json:"coalesce,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
	// NotBefore holds a job back: a coalescing window, or a retry's backoff.
	NotBefore time.Time `json:"not_before,omitzero"`
	Attempts  int       `json:"attempts,omitempty"`
	Merged    int       `json:"merged,omitempty"` // messages coalesced into it
	Error     string    `json:"error,omitempty"`
	ResultSeq uint64    `json:"result_seq,omitempty"`
}

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

func addQueued(tx *bolt.Tx, j Job) error {
	id := u64(j.ID)
	if err := tx.Bucket(bucketQueue).Put(queueKey(j.Priority, j.ID), queueEntry(j)); err != nil {
		return err
	}
	if err := tx.Bucket(bucketPQueue).Put(pipelineKey(j.Pipeline, id), nil); err != nil {
		return err
	}
	if j.Coalesce != "" {
		if err := tx.Bucket(bucketCoalesce).Put(pipelineKey(j.Pipeline, []byte(j.Coalesce)), id); err != nil {
			return err
		}
	}
	b := tx.Bucket(bucketBacklog)
	return putUint(b, []byte(j.Pipeline), getUint(b, []byte(j.Pipeline))+1)
}

func removeQueued(tx *bolt.Tx, j Job) error {
	if err := tx.Bucket(bucketQueue).Delete(queueKey(j.Priority, j.ID)); err != nil {
		return err
	}
	if err := tx.Bucket(bucketPQueue).Delete(pipelineKey(j.Pipeline, u64(j.ID))); err != nil {
		return err
	}
	if j.Coalesce != "" {
		cb := tx.Bucket(bucketCoalesce)
		key := pipelineKey(j.Pipeline, []byte(j.Coalesce))
		if v := cb.Get(key); len(v) == 8 && binary.BigEndian.Uint64(v) == j.ID {
			if err := cb.Delete(key); err != nil {
				return err
			}
		}
	}
	b := tx.Bucket(bucketBacklog)
	if n := getUint(b, []byte(j.Pipeline)); n > 1 {
		return putUint(b, []byte(j.Pipeline), n-1)
	}
	return b.Delete([]byte(j.Pipeline))
}

func putJob(tx *bolt.Tx, j Job) error {
	return tx.Bucket(bucketJobs).Put(u64(j.ID), appendJob(make([]byte, 0, 256+len(j.Request)), j))
}

func getJob(tx *bolt.Tx, id uint64) (Job, error) {
	v := tx.Bucket(bucketJobs).Get(u64(id))
	if v == nil {
		return Job{}, fmt.Errorf("job %d: %w", id, ErrNotFound)
	}
	return DecodeJob(v)
}

// DecodeJob parses a stored job.
func DecodeJob(data []byte) (Job, error) {
	var j Job
	if err := json.Unmarshal(data, &j); err != nil {
		return Job{}, fmt.Errorf("decode job: %w", err)
	}
	if j.ID == 0 {
		return Job{}, fmt.Errorf("decode job: no id")
	}
	return j, nil
}

func clampPriority(p int) int { return max(0, min(p, Priorities-1)) }

// Job returns the job with id.
func (s *Store) Job(id uint64) (Job, error) {
	var j Job
	err := s.view(func(tx *bolt.Tx) (err error) {
		j, err = getJob(tx, id)
		return err
	})
	return j, err
}

// JobFilter selects jobs for Jobs.
type JobFilter struct {
	State    JobState
	Pipeline string
	Since    time.Time // created at or after
	Until    time.Time // created before; zero means no bound
	// BeforeID pages backwards: only jobs with smaller ids. 0 means from
	// the newest.
	BeforeID uint64
	Limit    int
}

// Jobs returns jobs matching f, newest first.
func (s *Store) Jobs(f JobFilter) ([]Job, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	var out []Job
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketJobs).Cursor()
		var k, v []byte
		if f.BeforeID > 0 {
			k, v = c.Seek(u64(f.BeforeID))
			k, v = c.Prev()
		} else {
			k, v = c.Last()
		}
		for ; k != nil && len(out) < f.Limit; k, v = c.Prev() {
			j, err := DecodeJob(v)
			if err != nil {
				return err
			}
			if !f.Since.IsZero() && j.CreatedAt.Before(f.Since) {
				break // ids grow with time: nothing older can match
			}
			if (f.State != "" && j.State != f.State) || (f.Pipeline != "" && j.Pipeline != f.Pipeline) ||
				(!f.Until.IsZero() && !j.CreatedAt.Before(f.Until)) {
				continue
			}
			out = append(out, j)
		}
		return nil
	})
	return out, err
}

// ReadyJobs returns up to n queued jobs that may start at now, highest
// priority first, then oldest; skip excludes jobs (of a rate-limited
// pipeline, or waiting for their model, say). wake is the earliest time a
// held-back job becomes ready, or zero. skip sees only the job's ID,
// Priority, Pipeline, Model and NotBefore (all a scan reads; a job is
// decoded only when it is returned); it runs inside a read transaction
// and must not use the store.
func (s *Store) ReadyJobs(now time.Time, n int, skip func(Job) bool) (ready []Job, wake time.Time, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketQueue).Cursor()
		for k, v := c.First(); k != nil && len(ready) < n; k, v = c.Next() {
			j, ok := parseQueueEntry(k, v)
			if !ok {
				if j, err = getJob(tx, binary.BigEndian.Uint64(k[1:])); err != nil {
					return err
				}
			}
			if j.NotBefore.After(now) {
				if wake.IsZero() || j.NotBefore.Before(wake) {
					wake = j.NotBefore
				}
				continue
			}
			if skip != nil && skip(j) {
				continue
			}
			full, err := getJob(tx, j.ID)
			if err != nil {
				return err
			}
			ready = append(ready, full)
		}
		return nil
	})
	return ready, wake, err
}

// Backlog returns the number of queued jobs per pipeline.
func (s *Store) Backlog() (map[string]int, error) {
	out := map[string]int{}
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketBacklog).ForEach(func(k, v []byte) error {
			out[string(k)] = int(binary.BigEndian.Uint64(v))
			return nil
		})
	})
	return out, err
}

// transition applies fn to job id in a group commit, checking that the
// job is in the state from.
func (s *Store) transition(ctx context.Context, id uint64, from JobState, fn func(tx *bolt.Tx, j *Job) error) (Job, error) {
	var out Job
	err := s.commit(ctx, func(tx *bolt.Tx) error {
		j, err := getJob(tx, id)
		if err != nil {
			return err
		}
		if j.State != from {
			return fmt.Errorf("job %d is %s, not %s: %w", id, j.State, from, ErrWrongState)
		}
		if err := fn(tx, &j); err != nil {
			return err
		}
		out = j
		return putJob(tx, j)
	})
	return out, err
}

// StartJob moves a queued job to running.
func (s *Store) StartJob(ctx context.Context, id uint64, now time.Time) (Job, error) {
	return s.transition(ctx, id, JobQueued, func(tx *bolt.Tx, j *Job) error {
		if err := removeQueued(tx, *j); err != nil {
			return err
		}
		j.State, j.UpdatedAt = JobRunning, now
		j.Attempts++
		return tx.Bucket(bucketRunning).Put(u64(j.ID), nil)
	})
}

// FinishJob marks a running job done and appends its result to the
// outbox, in one transaction: a job has exactly one result. fill, when
// set, completes the record once its sequence number is known (a result
// message carries it).
func (s *Store) FinishJob(ctx context.Context, id uint64, rec Record, fill func(*Record) error, now time.Time) (Record, error) {
	_, err := s.transition(ctx, id, JobRunning, func(tx *bolt.Tx, j *Job) error {
		rec.JobID = j.ID
		var err error
		if rec, err = appendRecord(tx, rec, fill, now); err != nil {
			return err
		}
		j.State, j.UpdatedAt, j.ResultSeq, j.Error = JobDone, now, rec.Seq, ""
		return tx.Bucket(bucketRunning).Delete(u64(j.ID))
	})
	if err == nil {
		s.appended()
	}
	return rec, err
}

// FailJob marks a running (or queued) job failed and appends its dead
// letter, in one transaction.
func (s *Store) FailJob(ctx context.Context, id uint64, from JobState, reason string, rec Record, fill func(*Record) error, now time.Time) (Record, error) {
	_, err := s.transition(ctx, id, from, func(tx *bolt.Tx, j *Job) error {
		if from == JobQueued {
			if err := removeQueued(tx, *j); err != nil {
				return err
			}
		}
		rec.JobID = j.ID
		var err error
		if rec, err = appendRecord(tx, rec, fill, now); err != nil {
			return err
		}
		j.State, j.UpdatedAt, j.Error, j.ResultSeq = JobFailed, now, reason, rec.Seq
		return tx.Bucket(bucketRunning).Delete(u64(j.ID))
	})
	if err == nil {
		s.appended()
	}
	return rec, err
}

// RetryJob puts a running job back in the queue, held until notBefore.
func (s *Store) RetryJob(ctx context.Context, id uint64, reason string, notBefore, now time.Time) (Job, error) {
	return s.transition(ctx, id, JobRunning, func(tx *bolt.Tx, j *Job) error {
		j.State, j.UpdatedAt, j.NotBefore, j.Error = JobQueued, now, notBefore, reason
		if err := tx.Bucket(bucketRunning).Delete(u64(j.ID)); err != nil {
			return err
		}
		return addQueued(tx, *j)
	})
}

// CancelJob cancels a queued job.
func (s *Store) CancelJob(ctx context.Context, id uint64, now time.Time) (Job, error) {
	return s.transition(ctx, id, JobQueued, func(tx *bolt.Tx, j *Job) error {
		if err := removeQueued(tx, *j); err != nil {
			return err
		}
		j.State, j.UpdatedAt, j.Error = JobCancelled, now, "cancelled"
		return nil
	})
}

// CancelRunningJob marks a running job cancelled (its inference was
// stopped).
func (s *Store) CancelRunningJob(ctx context.Context, id uint64, now time.Time) (Job, error) {
	return s.transition(ctx, id, JobRunning, func(tx *bolt.Tx, j *Job) error {
		j.State, j.UpdatedAt, j.Error = JobCancelled, now, "cancelled"
		return tx.Bucket(bucketRunning).Delete(u64(j.ID))
	})
}

// RequeueRunning puts back in the queue every job that was running when
// the process stopped, and returns how many.
func (s *Store) RequeueRunning(now time.Time) (int, error) {
	return s.RequeueOrphans(nil, now)
}

// RequeueOrphans puts back in the queue the running jobs for which busy
// is false (nil: all), and returns how many.
func (s *Store) RequeueOrphans(busy func(id uint64) bool, now time.Time) (int, error) {
	n := 0
	err := s.update(func(tx *bolt.Tx) error {
		n = 0
		run := tx.Bucket(bucketRunning)
		var ids []uint64
		if err := run.ForEach(func(k, _ []byte) error {
			if id := binary.BigEndian.Uint64(k); busy == nil || !busy(id) {
				ids = append(ids, id)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, id := range ids {
			j, err := getJob(tx, id)
			if err != nil {
				return err
			}
			j.State, j.UpdatedAt = JobQueued, now
			if err := putJob(tx, j); err != nil {
				return err
			}
			if err := addQueued(tx, j); err != nil {
				return err
			}
			if err := run.Delete(u64(id)); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// PruneJobs deletes finished jobs last updated before cutoff and dedup
// entries that expired by now, and returns how many jobs went.
func (s *Store) PruneJobs(cutoff, now time.Time, max int) (int, error) {
	n := 0
	err := s.update(func(tx *bolt.Tx) error {
		n = 0
		jobs := tx.Bucket(bucketJobs)
		c := jobs.Cursor()
		var del [][]byte
		for k, v := c.First(); k != nil && len(del) < max; k, v = c.Next() {
			j, err := DecodeJob(v)
			if err != nil {
				return err
			}
			if !j.CreatedAt.Before(cutoff) {
				break // ids grow with time
			}
			if j.State.Terminal() && j.UpdatedAt.Before(cutoff) {
				del = append(del, append([]byte(nil), k...))
			}
		}
		for _, k := range del {
			if err := jobs.Delete(k); err != nil {
				return err
			}
		}
		n = len(del)
		return pruneDedup(tx, now, max)
	})
	return n, err
}

func pruneDedup(tx *bolt.Tx, now time.Time, max int) error {
	exp, dedup := tx.Bucket(bucketDedupExp), tx.Bucket(bucketDedup)
	c := exp.Cursor()
	var del [][]byte
	limit := u64(uint64(now.UnixNano()))
	for k, _ := c.First(); k != nil && len(del) < max && bytes.Compare(k[:8], limit) <= 0; k, _ = c.Next() {
		del = append(del, append([]byte(nil), k...))
	}
	for _, k := range del {
		key := k[8:]
		// Only delete the dedup entry if it is this expiry's: the key may
		// have been seen again since.
		if v := dedup.Get(key); len(v) == 16 && bytes.Equal(v[:8], k[:8]) {
			if err := dedup.Delete(key); err != nil {
				return err
			}
		}
		if err := exp.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
