package mqtt

import (
	"context"
	"errors"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// testMessage is a delivered message as paho hands it over.
type testMessage struct {
	topic string
	qos   byte
	id    uint16
}

func (m testMessage) Duplicate() bool   { return false }
func (m testMessage) Qos() byte         { return m.qos }
func (m testMessage) Retained() bool    { return false }
func (m testMessage) Topic() string     { return m.topic }
func (m testMessage) MessageID() uint16 { return m.id }
func (m testMessage) Payload() []byte   { return nil }
func (m testMessage) Ack()              {}

// TestInboxNeverBlocks puts more messages than any bound without a
// reader: QoS 1 messages are all kept, QoS 0 ones past the bound are
// dropped, and next returns the kept ones in order.
func TestInboxNeverBlocks(t *testing.T) {
	b := newInbox()
	const bound = 4
	var want []uint16
	for i := range uint16(10) {
		qos := byte(i % 2)
		kept := b.put(testMessage{topic: "a", qos: qos, id: i}, bound)
		if wantKept := qos == 1 || i < bound; kept != wantKept {
			t.Fatalf("message %d (QoS %d): kept %v, want %v", i, qos, kept, wantKept)
		}
		if kept {
			want = append(want, i)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, id := range want {
		m, ok := b.next(ctx)
		if !ok || m.MessageID() != id {
			t.Fatalf("next: %v %v, want message %d", m, ok, id)
		}
	}
	short, cancelShort := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancelShort()
	if m, ok := b.next(short); ok {
		t.Fatalf("next on an empty inbox returned %v", m)
	}
}

// fakeBacklog is a pipeline backlog the test fills and drains.
type fakeBacklog struct {
	queued map[string]int
	err    error
	reads  int
}

func (f *fakeBacklog) read() (map[string]int, error) {
	f.reads++
	out := map[string]int{}
	for k, v := range f.queued {
		out[k] = v
	}
	return out, f.err
}

// TestBacklogGate drives the gate through a burst: it admits as many
// messages as the backlog has room for, counting those not yet settled,
// holds the rest until jobs start, lets through what no reject-policy
// pipeline limits, and lets messages through when the backlog cannot be
// read (the job manager decides then).
func TestBacklogGate(t *testing.T) {
	limits := func(topic string) map[string]int {
		switch topic {
		case "limited":
			return map[string]int{"p": 3}
		case "both":
			return map[string]int{"p": 3, "q": 1}
		}
		return nil
	}
	fb := &fakeBacklog{queued: map[string]int{"p": 1}}
	g := newBacklogGate(limits, fb.read)
	admit := func(topic string) ([]string, bool) {
		t.Helper()
		g.looked = time.Time{} // no waiting for the poll interval in a test
		ok, names := g.admit(topic)
		return names, ok
	}

	if names, ok := admit("free"); !ok || names != nil {
		t.Fatalf("an unlimited topic: %v %v, want admitted for no pipeline", names, ok)
	}
	// Room for two: one job is queued of three.
	a, ok1 := admit("limited")
	b, ok2 := admit("limited")
	if !ok1 || !ok2 {
		t.Fatal("the first two messages were held; the backlog has room for two")
	}
	if _, ok := admit("limited"); ok {
		t.Fatal("a third message was admitted; the two pending fill the backlog")
	}
	// The two commit and settle: the backlog shows them, still full.
	fb.queued["p"] = 3
	g.release(a)
	g.release(b)
	if _, ok := admit("limited"); ok {
		t.Fatal("admitted with the backlog full")
	}
	// A job starts: room for one.
	fb.queued["p"] = 2
	c, ok := admit("limited")
	if !ok || len(c) != 1 || c[0] != "p" {
		t.Fatalf("after a job started: %v %v, want admitted for p", c, ok)
	}
	if _, ok := admit("limited"); ok {
		t.Fatal("admitted twice into room for one")
	}
	// A topic two pipelines take needs room in both.
	g.release(c)
	fb.queued = map[string]int{"p": 0, "q": 1}
	if _, ok := admit("both"); ok {
		t.Fatal("admitted with q full")
	}
	fb.queued["q"] = 0
	if names, ok := admit("both"); !ok || len(names) != 2 {
		t.Fatalf("with room in both: %v %v", names, ok)
	}
	// An unreadable backlog lets the message through.
	g.room = map[string]int{}
	fb.err = errors.New("disk I/O error")
	if names, ok := admit("limited"); !ok || names != nil {
		t.Fatalf("with the backlog unreadable: %v %v, want admitted, nothing pending", names, ok)
	}
}

// TestBacklogGateWaitsForRoom holds a message until a job starts, and
// gives up when the client stops.
func TestBacklogGateWaitsForRoom(t *testing.T) {
	room := make(chan struct{})
	queued := 1
	g := newBacklogGate(func(string) map[string]int { return map[string]int{"p": 1} }, func() (map[string]int, error) {
		select {
		case <-room:
			queued = 0
		default:
		}
		return map[string]int{"p": queued}, nil
	})
	done := make(chan bool)
	go func() {
		ok, _ := g.wait(context.Background(), "t")
		done <- ok
	}()
	select {
	case <-done:
		t.Fatal("admitted with the backlog full")
	case <-time.After(5 * gatePoll):
	}
	close(room)
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("wait failed")
		}
	case <-time.After(time.Second):
		t.Fatal("still held a second after the backlog had room")
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		ok, _ := g.wait(ctx, "t") // full again: the admitted one is pending
		done <- ok
	}()
	cancel()
	if ok := <-done; ok {
		t.Fatal("admitted after the context ended")
	}
}

var _ paho.Message = testMessage{}
