package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

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
