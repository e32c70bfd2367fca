package store

import (
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

// putJob writes j under its id in jobs/.
func putJob(tx *bolt.Tx, j Job) error {
	return tx.Bucket(bucketJobs).Put(u64(j.ID), appendJob(make([]byte, 0, 256+len(j.Request)), j))
}

// getJob reads job id from jobs/; a missing job is ErrNotFound.
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
	// Keep, when set, drops the jobs it returns false for before they
	// count against Limit: the API hides jobs a caller may not read.
	Keep func(Job) bool
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
				(!f.Until.IsZero() && !j.CreatedAt.Before(f.Until)) || (f.Keep != nil && !f.Keep(j)) {
				continue
			}
			out = append(out, j)
		}
		return nil
	})
	return out, err
}
