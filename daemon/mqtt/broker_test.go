package mqtt

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/daemon/jobs"
	"github.com/ember-edge/ember/daemon/pipeline"
	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/internal/testkit"
)

// These tests run the embedded broker in this process (so -race sees the
// per-connection ackers) over a real store, with the job manager's
// dispatcher off: jobs are committed and stay queued.

const testPipelines = `pipelines:
  - name: readings
    match: plant/+/reading
    prompt: "Reading {{.n}}"
    backlog: {max: 1000000}
`

type testBroker struct {
	b    *Broker
	st   *store.Store
	addr string
	stop func()
}

func startBroker(t *testing.T) *testBroker {
	// A subscriber of a 1800-message burst needs room for it in flight.
	return startBrokerWith(t, "limits: {max_inflight: 4096}", "")
}

// startBrokerWith starts a broker listening on a free loopback port with
// more keys of mqtt.embedded (embedded, YAML flow-mapping entries) and
// of mqtt (more, e.g. "requests: {enabled: true}").
func startBrokerWith(t *testing.T, embedded, more string) *testBroker {
	t.Helper()
	return startBrokerFull(t, embedded, more, testPipelines)
}

// startBrokerWithPipelines is startBrokerWith with other pipelines.
func startBrokerWithPipelines(t *testing.T, embedded, pipelines string) *testBroker {
	return startBrokerFull(t, embedded, "", pipelines)
}

func startBrokerFull(t *testing.T, embedded, more, pipelines string) *testBroker {
	t.Helper()
	port, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if embedded != "" {
		embedded = ", " + embedded
	}
	if more != "" {
		more = ", " + more
	}
	doc := fmt.Sprintf("device_id: d1\nstate_dir: state\nmqtt: {embedded: {listen: %q%s}%s}\n%s", addr, embedded, more, pipelines)
	cfg, err := config.Parse([]byte(doc), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "ember.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	pipes := pipeline.NewSet(cfg.DeviceID)
	pipes.EnableRequests(cfg.MQTT.Requests.Enabled)
	if _, err := pipes.SetLocal(cfg.Pipelines); err != nil {
		t.Fatal(err)
	}
	pub := &Publisher{}
	q := jobs.New(jobs.Deps{Store: st, Pipelines: pipes, Publisher: pub}, jobs.Options{DeviceID: cfg.DeviceID, DedupWindow: time.Minute, Logger: log,
		RequestMaxTokens: cfg.MQTT.Requests.MaxTokens})
	in, err := NewIngester(q.Intake, pipes, log)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBroker(cfg.MQTT.Embedded, in, cfg.DeviceID, log)
	if err != nil {
		t.Fatal(err)
	}
	pub.Broker = b
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	tb := &testBroker{b: b, st: st, addr: addr}
	var once sync.Once
	tb.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("broker: %v", err)
			}
		})
	}
	t.Cleanup(func() {
		tb.stop()
		st.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for len(b.Addrs()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the broker did not listen within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return tb
}

func connect(t *testing.T, addr, id string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetAutoReconnect(false).SetOrderMatters(false))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

// readings returns the n of every queued job, oldest first.
func readings(t *testing.T, st *store.Store) []int {
	t.Helper()
	js, err := st.Jobs(store.JobFilter{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(js)
	var out []int
	for _, j := range js {
		var req struct{ Input struct{ N int } }
		if err := json.Unmarshal(j.Request, &req); err != nil {
			t.Fatalf("job %d request %s: %v", j.ID, j.Request, err)
		}
		out = append(out, req.Input.N)
	}
	return out
}

// Several connections, each with many messages in flight: every message
// is acknowledged once committed, each connection's in its order, and
// subscribers still get them.
func TestPipelinedConnectionsAckEveryMessageInOrder(t *testing.T) {
	tb := startBroker(t)
	const conns, perConn = 6, 300
	var got sync.Map
	sub := connect(t, tb.addr, "scada")
	if tok := sub.Subscribe("plant/#", 1, func(_ paho.Client, m paho.Message) { got.Store(string(m.Payload()), true) }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	var wg sync.WaitGroup
	for c := range conns {
		cl := connect(t, tb.addr, fmt.Sprintf("plc-%d", c))
		wg.Go(func() {
			toks := make([]paho.Token, perConn)
			for i := range perConn {
				toks[i] = cl.Publish(fmt.Sprintf("plant/m%d/reading", c), 1, false, fmt.Sprintf(`{"n":%d}`, c*perConn+i))
			}
			for i, tok := range toks {
				if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
					t.Errorf("connection %d message %d: no PUBACK (%v)", c, i, tok.Error())
				}
			}
		})
	}
	wg.Wait()
	ns := readings(t, tb.st)
	if len(ns) != conns*perConn {
		t.Fatalf("%d jobs for %d acknowledged messages", len(ns), conns*perConn)
	}
	last := map[int]int{}
	for _, n := range ns {
		c := n / perConn
		if prev, ok := last[c]; ok && n < prev {
			t.Fatalf("connection %d: message %d committed after %d", c, n, prev)
		}
		last[c] = n
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		count := 0
		got.Range(func(any, any) bool { count++; return true })
		if count == conns*perConn {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the subscriber got %d of %d messages", count, conns*perConn)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Pipelined, a commit carries more than one message per connection.
	if cs := tb.st.CommitStats(); cs.Writes <= conns*cs.Batches {
		t.Errorf("%d writes in %d commits: no more than one message per connection per commit", cs.Writes, cs.Batches)
	} else {
		t.Logf("%d writes in %d commits", cs.Writes, cs.Batches)
	}
}

// Connections that drop with messages in flight, and a broker that
// stops under load, leave nothing half done: whatever was acknowledged is
// committed, and every acker ends.
func TestDisconnectsAndShutdownWithMessagesInFlight(t *testing.T) {
	tb := startBroker(t)
	acked := make(chan int, 100000)
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Go(func() {
			for round := 0; ; round++ {
				cl := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + tb.addr).
					SetClientID(fmt.Sprintf("flaky-%d", c)).SetAutoReconnect(false).SetConnectTimeout(time.Second).
					SetWriteTimeout(time.Second)) // a publish to a stopped broker gives up
				if tok := cl.Connect(); !tok.WaitTimeout(2*time.Second) || tok.Error() != nil {
					return // the broker is gone
				}
				var toks []paho.Token
				var ns []int
				for i := range 50 {
					n := (c*1000+round)*100 + i
					toks = append(toks, cl.Publish("plant/flaky/reading", 1, false, fmt.Sprintf(`{"n":%d}`, n)))
					ns = append(ns, n)
				}
				cl.Disconnect(0) // mid-flight
				settle := time.Now().Add(time.Second)
				for i, tok := range toks {
					if tok.WaitTimeout(max(time.Until(settle), time.Millisecond)) && tok.Error() == nil {
						acked <- ns[i]
					}
				}
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	stopped := time.Now()
	tb.stop() // under load
	if took := time.Since(stopped); took > 5*time.Second {
		t.Errorf("the broker took %v to stop", took)
	}
	wg.Wait()
	close(acked)
	committed := map[int]bool{}
	for _, n := range readings(t, tb.st) {
		committed[n] = true
	}
	count := 0
	for n := range acked {
		count++
		if !committed[n] {
			t.Fatalf("message %d was acknowledged but has no job", n)
		}
	}
	t.Logf("%d messages acknowledged, %d committed", count, len(committed))
	if err := tb.st.Check(); err != nil {
		t.Fatal(err)
	}
}

// Messages the acker passes on still come from their publisher: an
// MQTT 5 subscriber with No Local does not get its own back, others do.
func TestPassedOnMessagesKeepTheirOrigin(t *testing.T) {
	tb := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	own, other := make(chan string, 10), make(chan string, 10)
	plc := connect5(t, ctx, tb.addr, "plc-nolocal", own)
	if _, err := plc.Subscribe(ctx, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "plant/#", QoS: 1, NoLocal: true}}}); err != nil {
		t.Fatal(err)
	}
	watcher := connect5(t, ctx, tb.addr, "watcher", other)
	if _, err := watcher.Subscribe(ctx, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "plant/#", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	if resp, err := plc.Publish(ctx, &paho5.Publish{Topic: "plant/m1/reading", QoS: 1, Payload: []byte(`{"n":7}`)}); err != nil || resp.ReasonCode != 0 {
		t.Fatalf("publish: %v %+v", err, resp)
	}
	select {
	case got := <-other:
		if got != `{"n":7}` {
			t.Fatalf("the watcher got %q", got)
		}
	case <-ctx.Done():
		t.Fatal("the watcher got nothing")
	}
	select {
	case got := <-own:
		t.Fatalf("the publisher got its own message back despite No Local: %q", got)
	case <-time.After(300 * time.Millisecond):
	}
	if ns := readings(t, tb.st); len(ns) != 1 || ns[0] != 7 {
		t.Fatalf("jobs %v, want one for n=7", ns)
	}
}

func connect5(t *testing.T, ctx context.Context, addr, id string, got chan<- string) *paho5.Client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := paho5.NewClient(paho5.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho5.PublishReceived) (bool, error){
			func(pr paho5.PublishReceived) (bool, error) {
				got <- string(pr.Packet.Payload)
				return true, nil
			},
		},
	})
	if ca, err := c.Connect(ctx, &paho5.Connect{ClientID: id, KeepAlive: 30, CleanStart: true}); err != nil || ca.ReasonCode != 0 {
		t.Fatalf("MQTT 5 connect %s: %v %v", id, err, ca)
	}
	t.Cleanup(func() { c.Disconnect(&paho5.Disconnect{}) })
	return c
}
