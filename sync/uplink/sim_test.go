package uplink_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/internal/testkit"
	"github.com/ember-edge/ember/sync/consumer"
	"github.com/ember-edge/ember/sync/uplink"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// appendBySeq appends n records from many goroutines; each record's
// content is flakyRecord of its own sequence number, so content follows
// seq order (runs of kinds and priorities, as a real outbox has) however
// the appends interleave.
func appendBySeq(t testing.TB, st *store.Store, n int, device string) []store.Record {
	out := make([]store.Record, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			r, err := st.Append(context.Background(), store.Record{Priority: 0}, func(r *store.Record) error {
				f := flakyRecord(int(r.Seq - 1))
				r.Kind, r.Priority, r.Classification, r.Pipeline, r.DeviceID, r.Data = f.Kind, f.Priority, f.Classification, f.Pipeline, device, f.Data
				return nil
			}, time.Now())
			if err != nil {
				errs <- err
			}
			out[i] = r
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return out
}

// TestFleetSimulation runs a fleet in one process: EMBER_SIM_DEVICES
// devices (default 200), each with its own store of EMBER_SIM_RECORDS
// records (default 150, 30 under the race detector) and its own uplink behind its own flaky proxy,
// into one mosquitto, with one consumer. It reports how long until every
// backlog is empty and checks that no record is lost and none is written
// twice. Scale the records, not the assertions.
func TestFleetSimulation(t *testing.T) {
	devices := envInt("EMBER_SIM_DEVICES", 200)
	perDevice := envInt("EMBER_SIM_RECORDS", map[bool]int{false: 150, true: 30}[raceEnabled])
	faultMean := 8 << 10 // mean bytes up between faults; EMBER_SIM_FAULTS=0: a clean link
	if v, err := strconv.Atoi(os.Getenv("EMBER_SIM_FAULTS")); err == nil {
		faultMean = v
	}
	mq := testkit.StartMosquitto(t)
	out := filepath.Join(t.TempDir(), "records.jsonl")
	cons, err := consumer.New(consumer.Options{URL: mq.URL(), Fleet: "sim", Out: out, ClientID: "sim-consumer",
		Sink: consumer.SinkOptions{NoSync: true}})
	if err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithCancel(context.Background())
	cdone := make(chan error, 1)
	go func() { cdone <- cons.Run(cctx) }()
	defer func() {
		ccancel()
		if err := <-cdone; err != nil {
			t.Error(err)
		}
	}()

	type dev struct {
		st    *store.Store
		u     *uplink.Uplink
		proxy *faultProxy
		seqs  []uint64 // shared records written
	}
	fleet := make([]*dev, devices)
	var wg sync.WaitGroup
	setupStart := time.Now()
	var mu sync.Mutex
	for i := range fleet {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := &dev{st: uplink.OpenTestStore(t)}
			for _, r := range appendBySeq(t, d.st, perDevice, fmt.Sprintf("sim-%03d", i)) {
				if r.Classification != store.ClassLocal {
					d.seqs = append(d.seqs, r.Seq)
				}
			}
			d.proxy = startFaultProxy(t, mq.Addr, uint64(i+1), faultMean, faultMean/25)
			mu.Lock()
			fleet[i] = d
			mu.Unlock()
		}()
	}
	wg.Wait()
	expected := 0
	for i, d := range fleet {
		u, err := uplink.New(uplink.Options{URL: d.proxy.URL(), Fleet: "sim", Device: fmt.Sprintf("sim-%03d", i),
			Outbox: uplink.StoreOutbox{Store: d.st}, Settings: d.st, SettingsNotFound: store.ErrNotFound, BackoffMin: 50 * time.Millisecond, BackoffMax: time.Second,
			KeepAlive: 5 * time.Second, AckTimeout: 15 * time.Second, ConnectTimeout: 5 * time.Second, Redact: rules})
		if err != nil {
			t.Fatal(err)
		}
		d.u = u
		expected += len(d.seqs)
	}
	t.Logf("setup: %d devices x %d records in %v", devices, perDevice, time.Since(setupStart).Round(time.Millisecond))

	start := time.Now()
	for _, d := range fleet {
		runUplink(t, d.u)
	}
	drained := time.Duration(0)
	waitUntil(t, 150*time.Second, "every backlog empty and every record at the consumer", func() bool {
		if drained == 0 {
			for _, d := range fleet {
				if b, _ := d.st.SyncBacklog(); b.Records > 0 {
					return false
				}
			}
			drained = time.Since(start)
		}
		return cons.Sink().Stats().Records >= uint64(expected)
	})
	arrived := time.Since(start)
	var sent, acked, batches, bytesSent, reconnects, faults uint64
	for _, d := range fleet {
		s := d.u.Status()
		sent, acked, batches, bytesSent, reconnects = sent+s.RecordsSent, acked+s.RecordsAcked, batches+s.BatchesSent, bytesSent+s.BytesSent, reconnects+s.Reconnects
		faults += uint64(d.proxy.faults())
	}
	time.Sleep(200 * time.Millisecond)
	cs := cons.Sink().Stats()

	// Lost and duplicated, from the file.
	lines := readConsumed(t, out)
	type key struct {
		d string
		s uint64
	}
	type class struct {
		d string
		p int
	}
	seen := map[key]bool{}
	last := map[class]uint64{}
	dups, disordered := 0, 0
	for _, l := range lines {
		k := key{l.DeviceID, l.Seq}
		if seen[k] {
			dups++
		}
		seen[k] = true
		c := class{l.DeviceID, l.Priority}
		if l.Seq <= last[c] {
			disordered++
		}
		last[c] = l.Seq
	}
	if disordered > 0 {
		t.Errorf("%d records out of sequence order within their device's priority class", disordered)
	}
	lost := 0
	for i, d := range fleet {
		for _, s := range d.seqs {
			if !seen[key{fmt.Sprintf("sim-%03d", i), s}] {
				lost++
			}
		}
	}
	t.Logf("fleet of %d devices, %d shared records: backlogs empty after %v, all at the consumer after %v",
		devices, expected, drained.Round(time.Millisecond), arrived.Round(time.Millisecond))
	t.Logf("broker: %d messages (%.0f msg/s), %d records (%.0f records/s), %.0f bytes/message after gzip, %.1f records/message",
		cs.Messages, float64(cs.Messages)/arrived.Seconds(), expected, float64(expected)/arrived.Seconds(),
		float64(bytesSent)/float64(batches), float64(sent)/float64(batches))
	t.Logf("link: %d faults injected, %d reconnects; %d records sent for %d shared (%.2fx), %d duplicates dropped by the consumer",
		faults, reconnects, sent, expected, float64(sent)/float64(expected), cs.Duplicates)
	t.Logf("records lost: %d, duplicates after de-duplication: %d", lost, dups)
	if lost != 0 || dups != 0 {
		t.Errorf("%d records lost, %d duplicates after de-duplication", lost, dups)
	}
	if len(lines) != expected {
		t.Errorf("%d lines for %d shared records", len(lines), expected)
	}
}
