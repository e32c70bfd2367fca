package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/internal/testkit"
	"github.com/ember-edge/ember/sync/consumer"
)

// TestSIGKILLDuringSyncLosesNothing fills emberd's outbox, points its
// uplink at a real mosquitto through a bandwidth cap that makes the drain
// take seconds, and SIGKILLs emberd at random moments of the drain, then
// restarts it on the same state dir. The fleet-side consumer must end up
// with every shared record exactly once after de-duplication (the same
// bytes that were written), and never a local one: batches the broker had
// but emberd never saw acknowledged are sent again, and de-duplicate.
func TestSIGKILLDuringSyncLosesNothing(t *testing.T) {
	const (
		records = 3000
		kills   = 5
		fleet   = "plant-a"
	)
	rng := rand.New(rand.NewPCG(crashSeed, 4))
	mq := testkit.StartMosquitto(t)

	// The backlog, written before emberd first starts, as an earlier run
	// that had no link would have left it.
	stateDir := filepath.Join(t.TempDir(), "state")
	st, err := store.Open(filepath.Join(stateDir, "ember.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	shared := map[uint64]string{} // seq → data as written
	local := map[uint64]bool{}
	for i := range records {
		rec := store.Record{Kind: store.KindResult, DeviceID: deviceID, Pipeline: "alarms", JobID: uint64(i + 1), Priority: i % 10}
		if i%7 == 3 {
			rec.Classification = store.ClassLocal
		}
		data := fmt.Sprintf(`{"n":%d,"note":%q}`, i, letters(rng, 160))
		out, err := st.Append(context.Background(), rec, func(r *store.Record) error {
			r.Data = json.RawMessage(data)
			return nil
		}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if rec.Classification == store.ClassLocal {
			local[out.Seq] = true
		} else {
			shared[out.Seq] = data
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// The fleet side subscribes (a persistent session) before emberd
	// first connects; a probe it must reject shows the subscription is up.
	out := filepath.Join(t.TempDir(), "fleet.jsonl")
	cons, err := consumer.New(consumer.Options{URL: mq.URL(), Fleet: fleet, Out: out, ClientID: "e2e-fleet"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	consumed := make(chan error, 1)
	go func() { consumed <- cons.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-consumed
	})
	probe := mqttClient(t, mq.Addr, "e2e-probe-publisher")
	deadline := time.Now().Add(20 * time.Second)
	for cons.Sink().Stats().Rejected == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the consumer did not subscribe within 20s")
		}
		probe.Publish(fmt.Sprintf("fleet/v1/%s/probe/results", fleet), 1, false, []byte("not an envelope")).WaitTimeout(time.Second)
		time.Sleep(100 * time.Millisecond)
	}

	// About 400 KB to send (compressed) at 40 KB/s: each run is killed
	// mid-drain.
	d := newEmberd(t, daemonConfig{StateDir: stateDir, Extra: fmt.Sprintf(`uplink:
  url: %s
  fleet: %s
  backoff: {min: 100ms, max: 500ms}
  batch_records: 32
  batch_bytes: 8KiB
  bandwidth: 40000
`, mq.URL(), fleet)})
	// received counts the shared records of the backlog in the file so
	// far (emberd adds records of its own, audit of its starts).
	received := func() int {
		n := 0
		for seq := range readLines(t, out) {
			if _, ok := shared[seq]; ok {
				n++
			}
		}
		return n
	}
	for k := range kills {
		before := received()
		// Wait for the run to send something, then kill it at a random
		// point of what follows.
		deadline := time.Now().Add(20 * time.Second)
		for received() == before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond)
		if received() >= len(shared) {
			t.Fatalf("the backlog drained before kill %d; the test must kill mid-drain (slow the uplink down)", k+1)
		}
		d.kill()
		t.Logf("kill %d: %d of %d shared records received", k+1, received(), len(shared))
		d.start()
	}

	deadline = time.Now().Add(60 * time.Second)
	for received() < len(shared) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d shared records received within 60s of the last restart", received(), len(shared))
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.stop()
	time.Sleep(200 * time.Millisecond) // anything in flight from the last run lands
	stats := cons.Sink().Stats()
	t.Logf("consumer: %d records, %d duplicates dropped, %d envelopes", stats.Records, stats.Duplicates, stats.Messages)

	// The file holds each shared record once, byte for byte, and nothing
	// local.
	lines := readLines(t, out)
	for seq, l := range lines {
		if local[seq] {
			t.Fatalf("local record %d left the device", seq)
		}
		if want, ok := shared[seq]; ok && string(l.Data) != want {
			t.Fatalf("record %d arrived as %s, was written as %s", seq, l.Data, want)
		}
	}
	var missing []string
	for seq := range shared {
		if _, ok := lines[seq]; !ok {
			missing = append(missing, fmt.Sprint(seq))
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d shared records never arrived: %s", len(missing), strings.Join(missing[:min(len(missing), 20)], " "))
	}
}

// readLines reads the consumer's file by seq, failing on a record that
// is there twice. A line still being written is left for the next read.
func readLines(t *testing.T, path string) map[uint64]consumer.Line {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	out := map[uint64]consumer.Line{}
	for len(data) > 0 {
		line, rest, ok := bytes.Cut(data, []byte("\n"))
		if !ok {
			break
		}
		data = rest
		var l consumer.Line
		if err := json.Unmarshal(line, &l); err != nil {
			t.Fatalf("consumer line %q: %v", line, err)
		}
		if _, dup := out[l.Seq]; dup {
			t.Fatalf("record %d is in the file twice", l.Seq)
		}
		out[l.Seq] = l
	}
	return out
}

func letters(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + rng.IntN(26))
	}
	return string(b)
}
