package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
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

func TestRequestIDsAreDeduplicatedWithinTheWindow(t *testing.T) {
	s := openTest(t)
	e := Enqueue{Job: job("infer", "a"), DedupKey: "req-1", DedupWindow: time.Minute}
	first := mustEnqueue(t, s, e, t0)
	again := mustEnqueue(t, s, e, t0.Add(30*time.Second))
	if !again.Duplicate || again.ID != first.ID {
		t.Fatalf("within the window: %+v, want a duplicate of %d", again, first.ID)
	}
	later := mustEnqueue(t, s, e, t0.Add(2*time.Minute))
	if later.Duplicate || later.ID == first.ID {
		t.Fatalf("after the window: %+v, want a new job", later)
	}
	// Pruning removes expired entries but not the live one.
	if _, err := s.PruneJobs(t0, t0.Add(90*time.Second), 100); err != nil {
		t.Fatal(err)
	}
	if r := mustEnqueue(t, s, e, t0.Add(2*time.Minute+time.Second)); !r.Duplicate || r.ID != later.ID {
		t.Fatalf("the live entry was pruned: %+v", r)
	}
}

func TestARedeliveredPacketIsRecognisedButAReusedIDIsNot(t *testing.T) {
	s := openTest(t)
	hash := func(b byte) [32]byte { var h [32]byte; h[0] = b; return h }
	first := mustEnqueue(t, s, Enqueue{Job: job("p", "A"), Redelivery: &Redelivery{Client: "plc-1", PacketID: 7, Hash: hash(1)}}, t0)
	dup := mustEnqueue(t, s, Enqueue{Job: job("p", "A"), Redelivery: &Redelivery{Client: "plc-1", PacketID: 7, Dup: true, Hash: hash(1)}}, t0)
	if !dup.Duplicate || dup.ID != first.ID {
		t.Fatalf("redelivery: %+v", dup)
	}
	// The same packet id with other content, even flagged DUP, is a new
	// message: the earlier one with that id was a different message.
	other := mustEnqueue(t, s, Enqueue{Job: job("p", "B"), Redelivery: &Redelivery{Client: "plc-1", PacketID: 7, Dup: true, Hash: hash(2)}}, t0)
	if other.Duplicate {
		t.Fatalf("a different message with a reused packet id was dropped: %+v", other)
	}
	// Another client's packet 7 is unrelated.
	if r := mustEnqueue(t, s, Enqueue{Job: job("p", "A"), Redelivery: &Redelivery{Client: "plc-2", PacketID: 7, Dup: true, Hash: hash(1)}}, t0); r.Duplicate {
		t.Fatalf("another client's packet: %+v", r)
	}
}

func TestCoalescingKeepsTheLatestMessagePerKey(t *testing.T) {
	s := openTest(t)
	e := func(v string) Enqueue {
		j := job("temps", v)
		j.Coalesce = "sensor-9"
		return Enqueue{Job: j, CoalesceWindow: 5 * time.Second}
	}
	first := mustEnqueue(t, s, e("21.0"), t0)
	second := mustEnqueue(t, s, e("21.5"), t0.Add(time.Second))
	third := mustEnqueue(t, s, e("22.0"), t0.Add(2*time.Second))
	if !second.Coalesced || !third.Coalesced || third.ID != first.ID {
		t.Fatalf("coalescing: %+v %+v %+v", first, second, third)
	}
	if ready, wake, _ := s.ReadyJobs(t0.Add(3*time.Second), 10, nil); len(ready) != 0 || !wake.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("held job offered early: %+v, wake %v", ready, wake)
	}
	ready, _, _ := s.ReadyJobs(t0.Add(5*time.Second), 10, nil)
	if len(ready) != 1 || string(ready[0].Request) != `"22.0"` || ready[0].Merged != 2 {
		t.Fatalf("after the window: %+v", ready)
	}
	if _, err := s.StartJob(ctx, first.ID, t0.Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	// Once the job runs, a new message starts a new job.
	if r := mustEnqueue(t, s, e("23.0"), t0.Add(6*time.Second)); r.Coalesced || r.ID == first.ID {
		t.Fatalf("coalesced into a running job: %+v", r)
	}
}

func TestBacklogBoundsAndOverflowPolicies(t *testing.T) {
	s := openTest(t)
	bounded := func(p string, o Overflow, v string) (EnqueueResult, error) {
		return s.Enqueue(ctx, Enqueue{Job: job(p, v), Backlog: 2, Overflow: o}, t0)
	}
	for _, v := range []string{"1", "2"} {
		if _, err := bounded("strict", OverflowReject, v); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := bounded("strict", OverflowReject, "3"); !errors.Is(err, ErrBacklogFull) {
		t.Fatalf("third into a backlog of 2 with reject: %v", err)
	}
	var ids []uint64
	for _, v := range []string{"1", "2"} {
		r, _ := bounded("lossy", OverflowDropOldest, v)
		ids = append(ids, r.ID)
	}
	r, err := bounded("lossy", OverflowDropOldest, "3")
	if err != nil || r.Dropped != ids[0] {
		t.Fatalf("drop_oldest: %+v %v, want job %d dropped", r, err, ids[0])
	}
	if j, _ := s.Job(ids[0]); j.State != JobFailed || j.Error == "" {
		t.Fatalf("dropped job %+v", j)
	}
	backlog, _ := s.Backlog()
	if backlog["strict"] != 2 || backlog["lossy"] != 2 {
		t.Fatalf("backlog %v", backlog)
	}
}

func TestHigherPriorityFirstThenOldest(t *testing.T) {
	s := openTest(t)
	var want []uint64
	low1 := mustEnqueue(t, s, Enqueue{Job: Job{Pipeline: "summary", Priority: 1, Request: req("a")}}, t0)
	high := mustEnqueue(t, s, Enqueue{Job: Job{Pipeline: "alarm", Priority: 9, Request: req("b")}}, t0)
	low2 := mustEnqueue(t, s, Enqueue{Job: Job{Pipeline: "summary", Priority: 1, Request: req("c")}}, t0)
	want = []uint64{high.ID, low1.ID, low2.ID}
	ready, _, _ := s.ReadyJobs(t0, 10, nil)
	for i, j := range ready {
		if j.ID != want[i] {
			t.Fatalf("order %v, want %v", ids(ready), want)
		}
	}
	skipped, _, _ := s.ReadyJobs(t0, 10, func(j Job) bool { return j.Pipeline == "alarm" })
	if len(skipped) != 2 || skipped[0].ID != low1.ID {
		t.Fatalf("skip: %v", ids(skipped))
	}
}

// The dispatcher filters the queue on what its index holds, without
// decoding held-back jobs; a queue written by an older build (no summary
// in the index) still dispatches, by reading the job.
func TestReadyJobsFiltersOnTheQueueIndex(t *testing.T) {
	s := openTest(t)
	held := mustEnqueue(t, s, Enqueue{Job: Job{Pipeline: "summary", Model: "qwen", Coalesce: "k", Request: req("a")}, CoalesceWindow: 5 * time.Second}, t0)
	waiting := mustEnqueue(t, s, Enqueue{Job: Job{Pipeline: "alarm", Model: "phi", Priority: 7, Request: req("b")}}, t0)
	legacy := mustEnqueue(t, s, Enqueue{Job: Job{Pipeline: "alarm", Priority: 3, Request: req("c")}}, t0)
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketQueue).Put(queueKey(3, legacy.ID), nil)
	}); err != nil {
		t.Fatal(err)
	}
	var seen []Job
	ready, wake, err := s.ReadyJobs(t0, 10, func(j Job) bool {
		seen = append(seen, j)
		return j.Model == "phi"
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ready) != 1 || ready[0].ID != legacy.ID || string(ready[0].Request) != `"c"` {
		t.Fatalf("ready %+v, want the legacy job, decoded", ready)
	}
	if !wake.Equal(t0.Add(5 * time.Second)) {
		t.Fatalf("wake %v, want the coalescing window's end", wake)
	}
	if len(seen) != 2 || seen[0].ID != waiting.ID || seen[0].Pipeline != "alarm" || seen[0].Priority != 7 || seen[0].Request != nil {
		t.Fatalf("skip saw %+v, want the index summary of job %d first", seen, waiting.ID)
	}
	if _, ok := parseQueueEntry(queueKey(1, held.ID), []byte{0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 'x'}); ok {
		t.Fatal("parsed an index value whose pipeline runs past its end")
	}
}

func ids(js []Job) []uint64 {
	var out []uint64
	for _, j := range js {
		out = append(out, j.ID)
	}
	return out
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

func TestGroupCommitBatchesConcurrentWritesAndIsolatesAFailure(t *testing.T) {
	s := openTest(t)
	const writers = 200
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			e := Enqueue{Job: job("p", fmt.Sprint(i))}
			if i == 100 {
				// One writer's pipeline is full and rejects: it must fail
				// alone, not its batch.
				e = Enqueue{Job: job("full", "x"), Backlog: 1, Overflow: OverflowReject}
				s.Enqueue(ctx, e, t0)
			}
			_, errs[i] = s.Enqueue(ctx, e, t0)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if (i == 100) != (err != nil) {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	st := s.CommitStats()
	if st.Batches >= st.Writes {
		t.Errorf("%d writes in %d transactions: no batching", st.Writes, st.Batches)
	}
	if backlog, _ := s.Backlog(); backlog["p"] != writers-1 {
		t.Errorf("backlog %v, want %d", backlog, writers-1)
	}
}

func TestWritesAfterCloseFail(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "ember.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.Enqueue(ctx, Enqueue{Job: job("p", "x")}, t0); !errors.Is(err, ErrClosed) {
		t.Fatalf("enqueue after close: %v", err)
	}
}

func TestAFullDiskIsBackpressureNotCorruption(t *testing.T) {
	dir := smallFS(t, 2<<20)
	path := filepath.Join(dir, "ember.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 8<<10)
	for i := range big {
		big[i] = 'a' + byte(i%26)
	}
	var acked []uint64
	var full error
	for i := 0; i < 10000 && full == nil; i++ {
		r, err := s.Enqueue(ctx, Enqueue{Job: Job{Pipeline: "p", Request: req(string(big) + fmt.Sprint(i))}}, t0)
		if err != nil {
			full = err
			break
		}
		acked = append(acked, r.ID)
	}
	if !errors.Is(full, ErrDiskFull) {
		t.Fatalf("filling a 2 MiB file system ended with %v, want ErrDiskFull", full)
	}
	s.Close()
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen after ENOSPC: %v", err)
	}
	defer s.Close()
	if err := s.Check(); err != nil {
		t.Fatalf("consistency after ENOSPC: %v", err)
	}
	for _, id := range acked {
		if _, err := s.Job(id); err != nil {
			t.Fatalf("acknowledged job %d lost: %v", id, err)
		}
	}
}

// smallFS mounts a tmpfs of size bytes for the test. It needs root, as
// CI has; tests never skip it.
func smallFS(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test mounts a small tmpfs to fill it and needs root (CI runs as root): run it with sudo")
	}
	dir := t.TempDir()
	if out, err := execCommand("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { execCommand("umount", "-l", dir) })
	return dir
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

func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte(`{"seq":1,"kind":"result","data":{"a":1},"created_at":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeRecord(data)
		if err == nil && (r.Seq == 0 || r.Kind == "") {
			t.Fatal("decoded a record without seq or kind")
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
