package store

import (
	"testing"
	"time"
)

func TestSyncCursorsPerPriorityClass(t *testing.T) {
	s := openTest(t)
	var alarms, routine []Record
	for i := range 6 {
		if i%2 == 0 {
			alarms = append(alarms, appendRec(t, s, KindResult, 9, t0.Add(time.Duration(i)*time.Minute)))
		} else {
			routine = append(routine, appendRec(t, s, KindResult, 2, t0.Add(time.Duration(i)*time.Minute)))
		}
	}
	b, _ := s.SyncBacklog()
	if b.Records != 6 || !b.Oldest.Equal(t0) {
		t.Fatalf("backlog %+v", b)
	}
	pend, _ := s.PendingRecords(9, 2)
	if len(pend) != 2 || pend[0].Seq != alarms[0].Seq || pend[1].Seq != alarms[1].Seq {
		t.Fatalf("pending alarms %+v", pend)
	}
	if err := s.MarkSynced(9, alarms[1].Seq); err != nil {
		t.Fatal(err)
	}
	if pend, _ := s.PendingRecords(9, 10); len(pend) != 1 || pend[0].Seq != alarms[2].Seq {
		t.Fatalf("after sync: %+v", pend)
	}
	// A late acknowledgement of an earlier batch does not move back.
	if err := s.MarkSynced(9, alarms[0].Seq); err != nil {
		t.Fatal(err)
	}
	if cur, _ := s.SyncCursor(9); cur != alarms[1].Seq {
		t.Fatalf("cursor moved back to %d", cur)
	}
	b, _ = s.SyncBacklog()
	if b.Records != 4 || !b.Oldest.Equal(routine[0].CreatedAt) {
		t.Fatalf("backlog after syncing two alarms %+v", b)
	}
	// Pruning an unsynced record keeps the counters right.
	if _, err := s.PruneOutbox(Limits{MaxRecords: 5}, t0.Add(time.Hour), 10, nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := s.SyncBacklog(); b.Records != 3 {
		t.Fatalf("backlog after dropping the oldest routine record: %+v", b)
	}
	// Confirmed records go after the retention; sent but unconfirmed
	// ones and unsynced ones stay.
	if n, err := s.PruneSynced(t0.Add(time.Hour), 100); err != nil || n != 0 {
		t.Fatalf("prune unconfirmed: %d %v", n, err)
	}
	if _, err := s.MarkConfirmed(9, alarms[1].Seq); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneSynced(t0.Add(time.Hour), 100)
	if err != nil || n != 2 {
		t.Fatalf("prune synced: %d %v", n, err)
	}
	if st, _ := s.OutboxStats(); st.Records != 3 {
		t.Fatalf("records %d", st.Records)
	}
}
