package uplink_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/ember-edge/ember/internal/testkit"
	"github.com/ember-edge/ember/sync/fleet"
	"github.com/ember-edge/ember/sync/redact"
	"github.com/ember-edge/ember/sync/uplink"
)

// The uplink's Link is what the fleet updater needs.
var _ fleet.Link = (*uplink.Link)(nil)

// TestFleetLinkOverTheUplink: over the uplink's one connection, the
// fleet link keeps its subscriptions across reconnects (retained
// messages arrive again), fails Publish fast while down, and reports up
// and down.
func TestFleetLinkOverTheUplink(t *testing.T) {
	mq := testkit.StartMosquitto(t)
	proxy := startFaultProxy(t, mq.Addr, 1, 0, 0) // a clean link we cut by hand
	st := uplink.OpenTestStore(t)
	u, err := uplink.New(uplink.Options{URL: proxy.URL(), Fleet: "plant", Device: "dev-1",
		Outbox: uplink.StoreOutbox{Store: st}, BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
		KeepAlive: time.Second, AckTimeout: 5 * time.Second, Logger: logger(),
		Redact: []redact.Rule{{Builtin: "email"}}})
	if err != nil {
		t.Fatal(err)
	}
	link := u.Link()
	var mu sync.Mutex
	var events []bool
	var desired [][]byte
	link.Notify(func(up bool) { mu.Lock(); events = append(events, up); mu.Unlock() })
	if err := link.Subscribe("fleet/v1/plant/desired", func(p []byte) {
		mu.Lock()
		desired = append(desired, append([]byte(nil), p...))
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if err := link.Publish("fleet/v1/plant/dev-1/reported", []byte("x"), true); !errors.Is(err, uplink.ErrOffline) {
		t.Fatalf("Publish before Run: %v, want ErrOffline", err)
	}

	// The operator publishes a retained manifest.
	op := paho.NewClient(paho.NewClientOptions().AddBroker(mq.URL()).SetClientID("operator"))
	if tok := op.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer op.Disconnect(0)
	if tok := op.Publish("fleet/v1/plant/desired", 1, true, []byte("manifest-v1")); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	reported := make(chan []byte, 4)
	if tok := op.Subscribe("fleet/v1/plant/dev-1/reported", 1, func(_ paho.Client, m paho.Message) { reported <- m.Payload() }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}

	runUplink(t, u)
	count := func() (int, int) { mu.Lock(); defer mu.Unlock(); return len(events), len(desired) }
	waitUntil(t, 10*time.Second, "the link up and the retained manifest", func() bool { e, d := count(); return e >= 1 && d >= 1 })
	// What the fleet updater reports leaves redacted, like every record.
	if err := link.Publish("fleet/v1/plant/dev-1/reported", []byte(`{"phase": "idle", "reason": "mail ops@plant.example"}`), true); err != nil {
		t.Fatalf("Publish while up: %v", err)
	}
	select {
	case p := <-reported:
		if string(p) != `{"phase":"idle","reason":"mail [REDACTED]"}` {
			t.Errorf("reported %s", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the operator heard no report")
	}

	// Cut the link: down is reported, Publish fails fast, and after the
	// reconnect the subscription is made again and the retained manifest
	// arrives again.
	proxy.refuse.Store(true)
	proxy.killAll()
	waitUntil(t, 10*time.Second, "the link reported down", func() bool { mu.Lock(); defer mu.Unlock(); return !events[len(events)-1] })
	if err := link.Publish("fleet/v1/plant/dev-1/reported", []byte("x"), true); !errors.Is(err, uplink.ErrOffline) {
		t.Fatalf("Publish while down: %v, want ErrOffline", err)
	}
	proxy.refuse.Store(false)
	waitUntil(t, 10*time.Second, "the link up again with the manifest redelivered", func() bool { e, d := count(); return e >= 3 && d >= 2 })
	mu.Lock()
	defer mu.Unlock()
	if want := []bool{true, false, true}; len(events) != 3 || events[0] != want[0] || events[1] != want[1] || events[2] != want[2] {
		t.Errorf("notifications %v, want %v", events, want)
	}
	for _, d := range desired {
		if string(d) != "manifest-v1" {
			t.Errorf("desired %q", d)
		}
	}
	if s := u.Status(); s.Reconnects != 1 {
		t.Errorf("reconnects %d, want 1", s.Reconnects)
	}
}

// TestRealLinkAppearsWithinOneStep: with the real MQTT client and a
// broker that cannot be reached (the proxy refuses), then can, the first
// dial after it can connects; Trigger dials without waiting.
func TestRealLinkAppearsWithinOneStep(t *testing.T) {
	mq := testkit.StartMosquitto(t)
	proxy := startFaultProxy(t, mq.Addr, 1, 0, 0)
	proxy.refuse.Store(true)
	clk := uplink.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	st := uplink.OpenTestStore(t)
	u, err := uplink.New(uplink.Options{URL: proxy.URL(), Fleet: "plant", Device: "dev-1",
		Outbox: uplink.StoreOutbox{Store: st}, BackoffMin: time.Second, BackoffMax: 5 * time.Minute,
		ConnectTimeout: 5 * time.Second, Clock: clk, Logger: logger()})
	if err != nil {
		t.Fatal(err)
	}
	runUplink(t, u)
	for range 6 {
		at, ok := clk.NextTimer(10 * time.Second)
		if !ok {
			t.Fatal("no backoff timer")
		}
		n := clk.TimersCreated()
		clk.Set(at)
		clk.WaitNewTimer(n, 10*time.Second)
	}
	s := u.Status()
	if s.State != uplink.StateOffline || s.DialAttempts != 7 {
		t.Fatalf("state %v after %d dials, want offline after 7", s.State, s.DialAttempts)
	}
	n := clk.TimersCreated()
	u.Trigger()
	// The dial fails and the uplink sleeps again, the clock unmoved.
	if _, ok := clk.WaitNewTimer(n, 10*time.Second); !ok || u.Status().DialAttempts != 8 {
		t.Fatalf("Trigger: %d dials, want 8", u.Status().DialAttempts)
	}

	proxy.refuse.Store(false)
	at, _ := clk.NextTimer(10 * time.Second)
	clk.Set(at)
	waitUntil(t, 10*time.Second, "online", func() bool { return u.Status().State.Online() })
	if n := u.Status().DialAttempts; n != 9 {
		t.Errorf("%d dials; the first after the link appeared should connect (9)", n)
	}
}
