package store

import (
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"
)

// addQueued enters a queued job in the queue indexes: queue/, pqueue/,
// coalesce/ (with a coalesce key) and its pipeline's backlog/ count.
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

// removeQueued takes a job out of the indexes addQueued put it in; the
// coalesce entry goes only if it still names this job.
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
