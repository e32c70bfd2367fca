package uplink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ember-edge/ember/daemon/store"
)

// fakeConn is a broker connection that records what is published and
// acknowledges when told (or at once, with autoAck).
type fakeConn struct {
	autoAck bool
	ackc    chan ack
	lostc   chan struct{}
	once    sync.Once

	mu   sync.Mutex
	pubs []fakePub
	more chan struct{} // closed and replaced on each publish
}

type fakePub struct {
	topic   string
	payload []byte
	id      uint64
}

func newFakeConn(window int, autoAck bool) *fakeConn {
	return &fakeConn{autoAck: autoAck, ackc: make(chan ack, window+1), lostc: make(chan struct{}), more: make(chan struct{})}
}

func (f *fakeConn) publish(topic string, payload []byte, id uint64) {
	f.mu.Lock()
	f.pubs = append(f.pubs, fakePub{topic, payload, id})
	close(f.more)
	f.more = make(chan struct{})
	f.mu.Unlock()
	if f.autoAck {
		f.ackc <- ack{id: id}
	}
}

func (f *fakeConn) acks() <-chan ack      { return f.ackc }
func (f *fakeConn) lost() <-chan struct{} { return f.lostc }
func (f *fakeConn) err() error            { return errors.New("fake connection dropped") }
func (f *fakeConn) subscribe(string, func([]byte)) error {
	return nil
}
func (f *fakeConn) publishWait(string, []byte, bool) error { return nil }
func (f *fakeConn) close()                                 { f.drop() }
func (f *fakeConn) drop()                                  { f.once.Do(func() { close(f.lostc) }) }

// ack acknowledges the i'th publish (0-based).
func (f *fakeConn) ack(i int, err error) {
	f.mu.Lock()
	id := f.pubs[i].id
	f.mu.Unlock()
	f.ackc <- ack{id: id, err: err}
}

// waitPubs waits until n batches were published and returns them.
func (f *fakeConn) waitPubs(t *testing.T, n int) []fakePub {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		f.mu.Lock()
		pubs, more := append([]fakePub(nil), f.pubs...), f.more
		f.mu.Unlock()
		if len(pubs) >= n {
			return pubs
		}
		select {
		case <-more:
		case <-deadline:
			t.Fatalf("%d batches published, want %d", len(pubs), n)
		}
	}
}

func (f *fakeConn) published() []fakePub {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakePub(nil), f.pubs...)
}

// decode returns the envelope of a publish.
func decode(t *testing.T, p fakePub) *Envelope {
	t.Helper()
	env, err := DecodeEnvelope(p.payload, 0)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func seqs(env *Envelope) []uint64 {
	var out []uint64
	for _, r := range env.Records {
		out = append(out, r.Seq)
	}
	return out
}

// testLogger logs to stderr when EMBER_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("EMBER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// fakeUplink makes an uplink on a real store whose dials return the
// connections conns yields in turn (an error after the last).
type fakeRig struct {
	st    *store.Store
	u     *Uplink
	mu    sync.Mutex
	conns []*fakeConn
	dials int
}

func newFakeRig(t *testing.T, o Options, next func(n int) (*fakeConn, error)) *fakeRig {
	t.Helper()
	r := &fakeRig{st: OpenTestStore(t)}
	o.URL, o.Fleet, o.Device = "tcp://fake:1883", "plant", "dev-1"
	o.Outbox = StoreOutbox{r.st}
	if o.Settings == nil {
		o.Settings, o.SettingsNotFound = r.st, store.ErrNotFound
	}
	if o.Logger == nil {
		o.Logger = testLogger()
	}
	u, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	u.setDial(func(ctx context.Context, window int) (conn, error) {
		r.mu.Lock()
		r.dials++
		n := r.dials
		r.mu.Unlock()
		c, err := next(n)
		if err != nil {
			return nil, err
		}
		r.mu.Lock()
		r.conns = append(r.conns, c)
		r.mu.Unlock()
		return c, nil
	})
	r.u = u
	return r
}

// run starts Run and stops it when the test ends.
func (r *fakeRig) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.u.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
}

func (r *fakeRig) conn(i int) *fakeConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns[i]
}

// waitFor polls cond (in real time) until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// rec is a record to append: kind, priority, classification and data.
func rec(kind string, prio int, class string, data string) store.Record {
	return store.Record{Kind: kind, Priority: prio, Classification: class, Pipeline: "line3", DeviceID: "dev-1",
		Data: []byte(data)}
}

func recs(n int, kind string, prio int) []store.Record {
	out := make([]store.Record, n)
	for i := range out {
		out[i] = rec(kind, prio, "", fmt.Sprintf(`{"i":%d,"text":"reading number %d"}`, i, i))
	}
	return out
}

// appendInOrder appends one at a time, so seq follows the slice.
func appendInOrder(t *testing.T, st *store.Store, rs []store.Record) []store.Record {
	t.Helper()
	out := make([]store.Record, len(rs))
	for i, r := range rs {
		got, err := st.Append(context.Background(), r, nil, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		out[i] = got
	}
	return out
}

// waitDrained waits until the uplink is idle with nothing left to send.
func (r *fakeRig) waitDrained(t *testing.T) {
	t.Helper()
	waitFor(t, "an idle uplink with an empty backlog", func() bool {
		st := r.u.Status()
		return st.State == StateIdle && st.Backlog.Records == 0 && st.InFlight == 0
	})
}
