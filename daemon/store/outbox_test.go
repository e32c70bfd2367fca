package store

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

func appendRec(t *testing.T, s *Store, kind string, priority int, now time.Time) Record {
	t.Helper()
	r, err := s.Append(ctx, Record{Kind: kind, Priority: priority, Data: json.RawMessage(`{"v":"` + fmt.Sprint(priority) + `"}`)}, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestOutboxSequenceIsGlobalAcrossPriorities(t *testing.T) {
	s := openTest(t)
	prios := []int{3, 9, 0, 3, 9}
	for i, p := range prios {
		r := appendRec(t, s, KindResult, p, t0)
		if r.Seq != uint64(i+1) || r.Boot != 1 || r.Classification != ClassShared {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	all, err := s.Records(RecordFilter{})
	if err != nil || len(all) != 5 {
		t.Fatalf("records %v %v", all, err)
	}
	for i, r := range all {
		if r.Seq != uint64(i+1) || r.Priority != prios[i] {
			t.Fatalf("merged order broken at %d: %+v", i, r)
		}
	}
	after, _ := s.Records(RecordFilter{AfterSeq: 3, Limit: 1})
	if len(after) != 1 || after[0].Seq != 4 {
		t.Fatalf("after 3: %+v", after)
	}
	if r, err := s.Record(2); err != nil || r.Priority != 9 {
		t.Fatalf("Record(2) = %+v %v", r, err)
	}
	if _, err := s.Record(99); err == nil {
		t.Fatal("Record(99) found something")
	}
}

func TestPruneByAgeThenLowestPriorityOldestFirst(t *testing.T) {
	s := openTest(t)
	old := appendRec(t, s, KindResult, 5, t0)
	lowA := appendRec(t, s, KindResult, 1, t0.Add(time.Hour))
	high := appendRec(t, s, KindResult, 9, t0.Add(time.Hour))
	lowB := appendRec(t, s, KindResult, 1, t0.Add(time.Hour))
	now := t0.Add(2 * time.Hour)
	n, err := s.PruneOutbox(Limits{MaxAge: 90 * time.Minute}, now, 100, nil)
	if err != nil || n != 1 {
		t.Fatalf("age prune: %d %v", n, err)
	}
	if _, err := s.Record(old.Seq); err == nil {
		t.Fatal("the old record survived")
	}
	n, _ = s.PruneOutbox(Limits{MaxRecords: 2}, now, 100, nil)
	if n != 1 {
		t.Fatalf("count prune dropped %d, want 1", n)
	}
	if _, err := s.Record(lowA.Seq); err == nil {
		t.Fatal("the oldest low-priority record survived")
	}
	for _, keep := range []Record{high, lowB} {
		if _, err := s.Record(keep.Seq); err != nil {
			t.Fatalf("record %d dropped: %v", keep.Seq, err)
		}
	}
	if st, _ := s.OutboxStats(); st.Records != 2 {
		t.Fatalf("count %d after pruning", st.Records)
	}
}

func TestCompactionShrinksTheFileAndKeepsTheData(t *testing.T) {
	s := openTest(t)
	payload := json.RawMessage(`"` + string(make([]byte, 0)) + fmt.Sprintf("%0900d", 0) + `"`)
	// Thirty writers, so that group commits keep the test quick.
	var wg sync.WaitGroup
	for range 30 {
		wg.Go(func() {
			for range 100 {
				if _, err := s.Append(ctx, Record{Kind: KindResult, Data: payload}, nil, t0); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	keep := appendRec(t, s, KindResult, 9, t0.Add(time.Hour))
	if _, err := s.PruneOutbox(Limits{MaxAge: time.Minute}, t0.Add(time.Hour), 10000, nil); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(s.Path())
	did, err := s.CompactIfWasteful(1<<20, 0.5)
	if err != nil || !did {
		t.Fatalf("compaction: %v %v (waste %+v)", did, err, must(s.Waste()))
	}
	after, _ := os.Stat(s.Path())
	if after.Size() >= before.Size()/2 {
		t.Fatalf("file %d bytes after compaction, %d before", after.Size(), before.Size())
	}
	if r, err := s.Record(keep.Seq); err != nil || r.Priority != 9 {
		t.Fatalf("record lost in compaction: %v", err)
	}
	// The store keeps working after the swap.
	if r := appendRec(t, s, KindResult, 0, t0); r.Seq != keep.Seq+1 {
		t.Fatalf("sequence after compaction: %d", r.Seq)
	}
	if did, _ := s.CompactIfWasteful(1<<20, 0.5); did {
		t.Error("compacted a file with nothing to reclaim")
	}
}

func must[T any](v T, _ error) T { return v }

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
