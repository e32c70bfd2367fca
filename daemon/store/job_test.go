package store

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

var (
	ctx = context.Background()
	t0  = time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
)

func req(s string) json.RawMessage { return json.RawMessage(fmt.Sprintf("%q", s)) }

func mustEnqueue(t *testing.T, s *Store, e Enqueue, now time.Time) EnqueueResult {
	t.Helper()
	res, err := s.Enqueue(ctx, e, now)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func job(pipeline string, request string) Job {
	return Job{Pipeline: pipeline, Request: req(request)}
}

func ids(js []Job) []uint64 {
	var out []uint64
	for _, j := range js {
		out = append(out, j.ID)
	}
	return out
}

func TestJobsListNewestFirstWithFilters(t *testing.T) {
	s := openTest(t)
	for i := range 5 {
		p := "a"
		if i%2 == 1 {
			p = "b"
		}
		mustEnqueue(t, s, Enqueue{Job: job(p, fmt.Sprint(i))}, t0.Add(time.Duration(i)*time.Minute))
	}
	all, _ := s.Jobs(JobFilter{})
	if len(all) != 5 || all[0].ID != 5 {
		t.Fatalf("jobs %v", ids(all))
	}
	onlyB, _ := s.Jobs(JobFilter{Pipeline: "b"})
	if len(onlyB) != 2 {
		t.Fatalf("pipeline b: %v", ids(onlyB))
	}
	recent, _ := s.Jobs(JobFilter{Since: t0.Add(3 * time.Minute)})
	if len(recent) != 2 {
		t.Fatalf("since: %v", ids(recent))
	}
	page, _ := s.Jobs(JobFilter{BeforeID: 3, Limit: 1})
	if len(page) != 1 || page[0].ID != 2 {
		t.Fatalf("page: %v", ids(page))
	}
}

func FuzzDecodeJob(f *testing.F) {
	f.Add([]byte(`{"id":1,"pipeline":"p","state":"queued","request":"x","created_at":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"id":0}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := DecodeJob(data)
		if err == nil && j.ID == 0 {
			t.Fatal("decoded a job without an id")
		}
	})
}

// Job ids are given out before the group commit; they stay unique and
// increasing across a restart and a compaction, and a duplicate costs a
// number, not a job.
func TestJobIDsSurviveReopenAndCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ember.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	next := func(s *Store, key string) EnqueueResult {
		t.Helper()
		res := mustEnqueue(t, s, Enqueue{Job: job("alarms", key), DedupKey: key, DedupWindow: time.Hour}, t0)
		if !res.Duplicate {
			if res.ID <= last || res.Job.ID != res.ID {
				t.Fatalf("job id %d (job %d) after %d", res.ID, res.Job.ID, last)
			}
			last = res.ID
		}
		return res
	}
	next(s, "a")
	next(s, "b")
	if res := next(s, "a"); !res.Duplicate {
		t.Fatal("a second a was not a duplicate")
	}
	s.Close()
	if s, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	next(s, "c")
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	next(s, "d")
	s.Close()
	if s, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	next(s, "e")
	ready, _, _ := s.ReadyJobs(t0, 10, nil)
	if len(ready) != 5 {
		t.Fatalf("%d jobs queued, want 5: %v", len(ready), ids(ready))
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}
