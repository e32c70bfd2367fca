package uplink

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"slices"
	"strconv"
	"testing"

	"github.com/ember-edge/ember/daemon/store"
)

func cursor(t *testing.T, st *store.Store, p int) uint64 {
	t.Helper()
	c, err := st.SyncCursor(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestOutOfOrderAcks: PUBACKs that come out of order move the cursor
// only over the contiguous acknowledged prefix.
func TestOutOfOrderAcks(t *testing.T) {
	c := newFakeConn(3, false)
	r := newFakeRig(t, Options{BatchRecords: 4, Window: 3}, func(n int) (*fakeConn, error) {
		if n == 1 {
			return c, nil
		}
		return nil, errors.New("no second connection")
	})
	got := appendInOrder(t, r.st, recs(16, store.KindResult, 5))
	r.run(t)

	pubs := c.waitPubs(t, 3)
	if len(pubs) != 3 {
		t.Fatalf("%d batches in flight with a window of 3", len(pubs))
	}
	for i, p := range pubs {
		if want := []uint64{got[4*i].Seq, got[4*i+1].Seq, got[4*i+2].Seq, got[4*i+3].Seq}; !slices.Equal(seqs(decode(t, p)), want) {
			t.Fatalf("batch %d holds %v, want %v", i, seqs(decode(t, p)), want)
		}
	}
	acked := func(n uint64) func() bool {
		return func() bool { return r.u.Status().BatchesAcked >= n }
	}

	c.ack(1, nil) // the second batch first
	waitFor(t, "the second batch's ack", acked(1))
	if cur := cursor(t, r.st, 5); cur != 0 {
		t.Fatalf("cursor moved to %d past the unacknowledged first batch", cur)
	}
	c.waitPubs(t, 4) // its window slot was freed all the same
	c.ack(2, nil)
	waitFor(t, "the third batch's ack", acked(2))
	if cur := cursor(t, r.st, 5); cur != 0 {
		t.Fatalf("cursor moved to %d past the unacknowledged first batch", cur)
	}
	c.ack(0, nil) // the first: the prefix is now three batches
	waitFor(t, "the first batch's ack", acked(3))
	waitFor(t, "the cursor over three batches", func() bool { return cursor(t, r.st, 5) == got[11].Seq })
	c.ack(3, nil)
	waitFor(t, "the cursor over everything", func() bool { return cursor(t, r.st, 5) == got[15].Seq })
	r.waitDrained(t)
	if b := r.u.Status().Backlog; b.Records != 0 {
		t.Errorf("backlog %+v after everything was acknowledged", b)
	}
}

// TestResendAfterDrop: a connection lost with batches in flight is
// followed by one that resends from the last acknowledged record.
func TestResendAfterDrop(t *testing.T) {
	first := newFakeConn(3, false)
	second := newFakeConn(3, true)
	r := newFakeRig(t, Options{BatchRecords: 4, Window: 3, BackoffMin: 1, BackoffMax: 1}, func(n int) (*fakeConn, error) {
		switch n {
		case 1:
			return first, nil
		case 2:
			return second, nil
		}
		return nil, errors.New("no third connection")
	})
	got := appendInOrder(t, r.st, recs(16, store.KindTelemetry, 2))
	r.run(t)

	first.waitPubs(t, 3)
	first.ack(0, nil)
	first.ack(2, nil) // acknowledged, but after an unacknowledged batch
	waitFor(t, "two acks", func() bool { return r.u.Status().BatchesAcked == 2 })
	first.drop()

	pubs := second.waitPubs(t, 3)
	if s := seqs(decode(t, pubs[0])); s[0] != got[4].Seq {
		t.Fatalf("after the drop the first batch starts at seq %d, want %d (the first unacknowledged)", s[0], got[4].Seq)
	}
	waitFor(t, "everything synced", func() bool { return cursor(t, r.st, 2) == got[15].Seq })
	var all []uint64
	for _, p := range second.published() {
		all = append(all, seqs(decode(t, p))...)
	}
	var want []uint64
	for _, g := range got[4:] {
		want = append(want, g.Seq)
	}
	if !slices.Equal(all, want) {
		t.Errorf("second connection sent %v, want %v", all, want)
	}
	st := r.u.Status()
	if st.Reconnects != 1 || st.Connects != 2 {
		t.Errorf("connects %d, reconnects %d; want 2 and 1", st.Connects, st.Reconnects)
	}
}

// TestFailedPublishEndsTheConnection: a PUBACK that fails (the client
// gave up on it) is a lost connection, not a lost batch.
func TestFailedPublishEndsTheConnection(t *testing.T) {
	first := newFakeConn(2, false)
	second := newFakeConn(2, true)
	r := newFakeRig(t, Options{BatchRecords: 2, Window: 2, BackoffMin: 1, BackoffMax: 1}, func(n int) (*fakeConn, error) {
		if n == 1 {
			return first, nil
		}
		return second, nil
	})
	got := appendInOrder(t, r.st, recs(4, store.KindResult, 0))
	r.run(t)
	first.waitPubs(t, 2)
	first.ack(0, errors.New("connection lost before Publish completed"))
	waitFor(t, "everything synced on the second connection", func() bool { return cursor(t, r.st, 0) == got[3].Seq })
	if s := seqs(decode(t, second.published()[0])); s[0] != got[0].Seq {
		t.Errorf("resend starts at %d, want %d", s[0], got[0].Seq)
	}
}

// TestPriorityKindsAndLocal: classes go highest first, batches split
// where the kind changes, local records never leave and the cursor
// moves over them.
func TestPriorityKindsAndLocal(t *testing.T) {
	c := newFakeConn(1, true)
	r := newFakeRig(t, Options{BatchRecords: 10, Window: 1}, func(int) (*fakeConn, error) { return c, nil })
	in := []store.Record{
		rec(store.KindResult, 1, "", `{"n":"routine-1"}`),
		rec(store.KindResult, 9, "", `{"n":"alarm-1"}`),
		rec(store.KindResult, 9, store.ClassLocal, `{"n":"alarm-local"}`),
		rec(store.KindTelemetry, 1, "", `{"n":"routine-tel"}`),
		rec(store.KindResult, 1, "", `{"n":"routine-2"}`),
		rec(store.KindDeadLetter, 5, "", `{"n":"dead-1"}`),
		rec(store.KindAudit, 5, "", `{"n":"audit-1"}`),
		rec(store.KindResult, 1, store.ClassLocal, `{"n":"routine-local"}`),
		rec(store.KindAudit, 5, store.ClassLocal, `{"n":"audit-local"}`),
	}
	got := appendInOrder(t, r.st, in)
	r.run(t)
	r.waitDrained(t)
	type sent struct {
		topic string
		seqs  []uint64
	}
	var batches []sent
	for _, p := range c.published() {
		env := decode(t, p)
		for _, rr := range env.Records {
			if rr.Kind != env.Kind {
				t.Errorf("record kind %q in a %q batch", rr.Kind, env.Kind)
			}
		}
		batches = append(batches, sent{p.topic, seqs(env)})
	}
	want := []sent{
		{"fleet/v1/plant/dev-1/results", []uint64{got[1].Seq}},
		{"fleet/v1/plant/dev-1/deadletters", []uint64{got[5].Seq}},
		{"fleet/v1/plant/dev-1/audit", []uint64{got[6].Seq}},
		{"fleet/v1/plant/dev-1/results", []uint64{got[0].Seq}},
		{"fleet/v1/plant/dev-1/telemetry", []uint64{got[3].Seq}},
		{"fleet/v1/plant/dev-1/results", []uint64{got[4].Seq}},
	}
	if len(batches) != len(want) {
		t.Fatalf("batches %v, want %v", batches, want)
	}
	for i := range want {
		if batches[i].topic != want[i].topic || !slices.Equal(batches[i].seqs, want[i].seqs) {
			t.Errorf("batch %d: %v, want %v", i, batches[i], want[i])
		}
	}
	for p, last := range map[int]uint64{9: got[2].Seq, 5: got[8].Seq, 1: got[7].Seq} {
		if cur := cursor(t, r.st, p); cur != last {
			t.Errorf("class %d cursor %d, want %d (over its local records too)", p, cur, last)
		}
	}
	if st := r.u.Status(); st.RecordsLocal != 3 || st.RecordsAcked != 6 || st.Backlog.Records != 0 {
		t.Errorf("status: local %d, acked %d, backlog %d; want 3, 6, 0", st.RecordsLocal, st.RecordsAcked, st.Backlog.Records)
	}
}

// TestBatchBounds: a batch stops at BatchRecords and at BatchBytes of
// envelope, and a record larger than BatchBytes goes alone.
func TestBatchBounds(t *testing.T) {
	c := newFakeConn(4, true)
	r := newFakeRig(t, Options{BatchRecords: 5, BatchBytes: 2048, Window: 4}, func(int) (*fakeConn, error) { return c, nil })
	var in []store.Record
	for i := range 12 {
		in = append(in, rec(store.KindResult, 3, "", `{"pad":"`+pad(300)+`","i":`+itoa(i)+`}`))
	}
	in = append(in, rec(store.KindResult, 3, "", `{"big":"`+pad(5000)+`"}`))
	in = append(in, rec(store.KindResult, 3, "", `{"after":1}`))
	appendInOrder(t, r.st, in)
	r.run(t)
	r.waitDrained(t)
	var sizes []int
	for _, p := range c.published() {
		env := decode(t, p)
		sizes = append(sizes, len(env.Records))
		if raw := gunzip(t, p.payload); len(env.Records) > 1 && len(raw) > 2048 {
			t.Errorf("batch of %d records is %d bytes, bound 2048", len(env.Records), len(raw))
		}
	}
	// ~500 bytes of envelope per record: 2048 bytes hold three; then the
	// big one alone, then the last.
	if want := []int{3, 3, 3, 3, 1, 1}; !slices.Equal(sizes, want) {
		t.Errorf("batch sizes %v, want %v", sizes, want)
	}
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func pad(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i*7%26)
	}
	return string(b)
}

func itoa(i int) string { return strconv.Itoa(i) }
