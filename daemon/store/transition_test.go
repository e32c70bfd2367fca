package store

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestAJobRunsToExactlyOneResult(t *testing.T) {
	s := openTest(t)
	res := mustEnqueue(t, s, Enqueue{Job: job("alarms", "press 4 overheating")}, t0)
	ready, _, err := s.ReadyJobs(t0, 10, nil)
	if err != nil || len(ready) != 1 || ready[0].ID != res.ID || ready[0].State != JobQueued {
		t.Fatalf("ready %+v %v", ready, err)
	}
	started, err := s.StartJob(ctx, res.ID, t0)
	if err != nil || started.State != JobRunning || started.Attempts != 1 {
		t.Fatalf("start: %+v %v", started, err)
	}
	if ready, _, _ := s.ReadyJobs(t0, 10, nil); len(ready) != 0 {
		t.Fatalf("a running job is still offered: %+v", ready)
	}
	rec, err := s.FinishJob(ctx, res.ID, Record{Kind: KindResult, Pipeline: "alarms", Data: json.RawMessage(`{"ok":true}`)}, nil, t0)
	if err != nil || rec.Seq != 1 || rec.JobID != res.ID {
		t.Fatalf("finish: %+v %v", rec, err)
	}
	if _, err := s.FinishJob(ctx, res.ID, Record{Kind: KindResult}, nil, t0); !errors.Is(err, ErrWrongState) {
		t.Fatalf("second finish: %v, want ErrWrongState", err)
	}
	got, _ := s.Job(res.ID)
	if got.State != JobDone || got.ResultSeq != rec.Seq {
		t.Fatalf("job after finish %+v", got)
	}
	if st, _ := s.OutboxStats(); st.Records != 1 {
		t.Fatalf("outbox holds %d records, want 1", st.Records)
	}
}

func TestRunningJobsAreRequeuedAfterACrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ember.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := mustEnqueue(t, s, Enqueue{Job: job("p", "x")}, t0)
	if _, err := s.StartJob(ctx, r.ID, t0); err != nil {
		t.Fatal(err)
	}
	s.Close() // the process dies while the job runs
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Boot() != 2 {
		t.Errorf("boot %d, want 2", s.Boot())
	}
	n, err := s.RequeueRunning(t0)
	if err != nil || n != 1 {
		t.Fatalf("requeue: %d %v", n, err)
	}
	ready, _, _ := s.ReadyJobs(t0, 10, nil)
	if len(ready) != 1 || ready[0].ID != r.ID {
		t.Fatalf("requeued job not ready: %+v", ready)
	}
}

func TestCancelAndRetry(t *testing.T) {
	s := openTest(t)
	a := mustEnqueue(t, s, Enqueue{Job: job("p", "a")}, t0)
	if j, err := s.CancelJob(ctx, a.ID, t0); err != nil || j.State != JobCancelled {
		t.Fatalf("cancel queued: %+v %v", j, err)
	}
	if _, err := s.CancelJob(ctx, a.ID, t0); !errors.Is(err, ErrWrongState) {
		t.Fatalf("cancel twice: %v", err)
	}
	b := mustEnqueue(t, s, Enqueue{Job: job("p", "b")}, t0)
	s.StartJob(ctx, b.ID, t0)
	if _, err := s.RetryJob(ctx, b.ID, "model busy", t0.Add(time.Second), t0); err != nil {
		t.Fatal(err)
	}
	if ready, _, _ := s.ReadyJobs(t0, 10, nil); len(ready) != 0 {
		t.Fatal("retried job offered before its backoff")
	}
	if ready, _, _ := s.ReadyJobs(t0.Add(time.Second), 10, nil); len(ready) != 1 {
		t.Fatal("retried job not offered after its backoff")
	}
}
