package store

import (
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

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
