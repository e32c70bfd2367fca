package consumer

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/ember-edge/ember/internal/testkit"
	"github.com/ember-edge/ember/sync/uplink"
)

func publisher(t *testing.T, url string) paho.Client {
	t.Helper()
	cli := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("test-device"))
	if tok := cli.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { cli.Disconnect(0) })
	return cli
}

func publish(t *testing.T, cli paho.Client, topic string, payload []byte) {
	t.Helper()
	if tok := cli.Publish(topic, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
}

func startConsumer(t *testing.T, o Options) (*Consumer, func()) {
	t.Helper()
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	return c, func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func waitRecords(t *testing.T, c *Consumer, n uint64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for c.Sink().Stats().Records < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d records, want %d", c.Sink().Stats().Records, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestConsumerPersistentSession: what devices publish while the consumer
// is away reaches it when it comes back (QoS 1, persistent session), and
// a restart writes nothing twice.
func TestConsumerPersistentSession(t *testing.T) {
	mq := testkit.StartMosquitto(t)
	out := filepath.Join(t.TempDir(), "records.jsonl")
	o := Options{URL: mq.URL(), Fleet: "plant", Out: out, ClientID: "consumer-test"}
	dev := publisher(t, mq.URL())

	c, stop := startConsumer(t, o)
	// Wait for the subscription: publish until the first record lands.
	deadline := time.Now().Add(10 * time.Second)
	for c.Sink().Stats().Records == 0 && time.Now().Before(deadline) {
		publish(t, dev, "fleet/v1/plant/dev-1/results", envelope(t, "dev-1", "A", uplink.KindResult, 1, 2))
		time.Sleep(50 * time.Millisecond)
	}
	publish(t, dev, "fleet/v1/plant/dev-1/telemetry", envelope(t, "dev-1", "A", uplink.KindTelemetry, 3))
	waitRecords(t, c, 3)
	stop()

	// Away: the broker queues for the persistent session.
	publish(t, dev, "fleet/v1/plant/dev-1/results", envelope(t, "dev-1", "A", uplink.KindResult, 2, 4))
	publish(t, dev, "fleet/v1/plant/dev-2/audit", envelope(t, "dev-2", "A", uplink.KindAudit, 1))
	publish(t, dev, "fleet/v1/plant/dev-2/deadletters", envelope(t, "dev-2", "A", uplink.KindDeadLetter, 2))
	publish(t, dev, "fleet/v1/other/dev-3/results", envelope(t, "dev-3", "A", uplink.KindResult, 1)) // another fleet

	c, stop = startConsumer(t, o)
	waitRecords(t, c, 3) // seq 4 of dev-1, and dev-2's two
	time.Sleep(100 * time.Millisecond)
	stop()
	lines := readLines(t, out)
	type key struct {
		d string
		s uint64
	}
	seen := map[key]string{}
	for _, l := range lines {
		k := key{l.DeviceID, l.Seq}
		if _, dup := seen[k]; dup {
			t.Errorf("%v written twice", k)
		}
		seen[k] = l.Kind
	}
	want := map[key]string{{"dev-1", 1}: "result", {"dev-1", 2}: "result", {"dev-1", 3}: "telemetry", {"dev-1", 4}: "result",
		{"dev-2", 1}: "audit", {"dev-2", 2}: "deadletter"}
	if len(seen) != len(want) {
		t.Errorf("records %v, want %v", seen, want)
	}
	for k, kind := range want {
		if seen[k] != kind {
			t.Errorf("%v: kind %q, want %q", k, seen[k], kind)
		}
	}
}
