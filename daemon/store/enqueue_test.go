package store

import (
	"errors"
	"testing"
	"time"
)

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
