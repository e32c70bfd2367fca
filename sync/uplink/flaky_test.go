package uplink_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/internal/testkit"
	"github.com/ember-edge/ember/sync/consumer"
	"github.com/ember-edge/ember/sync/redact"
	"github.com/ember-edge/ember/sync/uplink"
)

// The secrets the device's records hold, and the rules that must keep
// them home.
var (
	secrets = []string{"op.jane@example.com", "+1 202 555 0173", "10.20.30.40", "SN-2024-00123",
		"tok-ALPHA-99127", "Jane Roe Operator", "never-leaves"}
	rules = []redact.Rule{
		{Builtin: "email"}, {Builtin: "phone"}, {Builtin: "ipv4"}, {Builtin: "serial"},
		{Pattern: `tok-[A-Z]+-\d+`}, {Field: "input.operator", Replace: "[operator]"},
	}
)

// flakyRecord is record i of a test outbox: runs of each kind in turn,
// priorities 0, 3 and 9 interleaved in short runs, one in nine
// classified local, every one full of secrets.
func flakyRecord(i int) store.Record {
	r := store.Record{Kind: kinds[(i/40)%len(kinds)], Priority: []int{0, 3, 9}[(i/7)%3], Pipeline: "line3", DeviceID: "dev-1"}
	if i%9 == 4 {
		r.Classification = store.ClassLocal
	}
	r.Data = fmt.Appendf(nil, `{"job_id":%d,"output":{"text":"pump %d ok; call op.jane@example.com or +1 202 555 0173",`+
		`"readings":[{"serial":"SN-2024-00123","v":%d.5}]},"input":{"operator":"Jane Roe Operator","host":"10.20.30.40",`+
		`"note":"tok-ALPHA-99127","local":%q},"pad":"%s"}`, i, i%7, i, map[bool]string{true: "never-leaves"}[r.Classification == store.ClassLocal],
		bytes.Repeat([]byte(strconv.Itoa(i)), 10))
	return r
}

// TestUplinkThroughFlakyLink drives a real store's outbox through a real
// mosquitto, over a proxy that keeps breaking the link (mid-batch, both
// ways, resets, stalls, half-open), while records keep arriving, and
// checks what the consumer wrote: every shared record at least once,
// after de-duplication exactly those, in sequence order per priority
// class, nothing local, nothing a redaction rule covers.
func TestUplinkThroughFlakyLink(t *testing.T) {
	initial, later, mean := 2500, 400, 5<<10
	if raceEnabled {
		initial, later, mean = 1200, 200, 2500
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("EMBER_FAULT_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("fault seed %d (EMBER_FAULT_SEED reproduces)", seed)

	mq := testkit.StartMosquitto(t)
	proxy := startFaultProxy(t, mq.Addr, seed, mean, 150)
	tap := startWiretap(t, mq.URL(), "fleet/v1/plant/#")
	out := filepath.Join(t.TempDir(), "records.jsonl")
	cons, err := consumer.New(consumer.Options{URL: mq.URL(), Fleet: "plant", Out: out, ClientID: "flaky-consumer",
		Sink: consumer.SinkOptions{NoSync: true}, Logger: logger()})
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

	st := uplink.OpenTestStore(t)
	var written []store.Record
	for i := range initial {
		written = append(written, flakyRecord(i))
	}
	written = uplink.AppendRecords(t, st, written)
	u, err := uplink.New(uplink.Options{
		URL: proxy.URL(), Fleet: "plant", Device: "dev-1", Outbox: uplink.StoreOutbox{Store: st}, Settings: st, SettingsNotFound: store.ErrNotFound,
		BatchRecords: 32, Window: 4, BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		KeepAlive: time.Second, AckTimeout: 2 * time.Second, ConnectTimeout: 2 * time.Second,
		Redact: rules, Logger: logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := runUplink(t, u)

	// Records keep arriving while the uplink works.
	for i := initial; i < initial+later; i++ {
		r, err := st.Append(context.Background(), flakyRecord(i), nil, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		written = append(written, r)
		u.Poke()
		if i%20 == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}

	want := map[uint64]store.Record{}
	for _, r := range written {
		if r.Classification != store.ClassLocal {
			want[r.Seq] = r
		}
	}
	waitUntil(t, 100*time.Second, "every shared record at the consumer and an empty backlog", func() bool {
		b, _ := st.SyncBacklog()
		return b.Records == 0 && cons.Sink().Stats().Records >= uint64(len(want))
	})
	stop()
	s := u.Status()
	t.Logf("uplink: %d dials, %d connects, %d batches sent (%d acked), %d records sent (%d acked), %d bytes",
		s.DialAttempts, s.Connects, s.BatchesSent, s.BatchesAcked, s.RecordsSent, s.RecordsAcked, s.BytesSent)
	t.Logf("proxy: %d connections, %d drops, %d resets, %d stalls, %d half-open; consumer %+v",
		proxy.accepted.Load(), proxy.drops.Load(), proxy.resets.Load(), proxy.stalls.Load(), proxy.blackholes.Load(), cons.Sink().Stats())
	if s.Reconnects < 20 || proxy.faults() < 20 {
		t.Errorf("only %d reconnects and %d faults: the link was not flaky enough to test anything", s.Reconnects, proxy.faults())
	}
	time.Sleep(200 * time.Millisecond) // let the consumer write what is in flight

	// What the consumer wrote.
	red, _ := redact.New(rules)
	lines := readConsumed(t, out)
	got := map[uint64]bool{}
	lastInClass := map[int]uint64{}
	for _, l := range lines {
		if got[l.Seq] {
			t.Errorf("seq %d written twice", l.Seq)
		}
		got[l.Seq] = true
		w, ok := want[l.Seq]
		if !ok {
			t.Errorf("seq %d arrived but was not written shared (local or unknown)", l.Seq)
			continue
		}
		if l.Seq <= lastInClass[l.Priority] {
			t.Errorf("class %d: seq %d after %d", l.Priority, l.Seq, lastInClass[l.Priority])
		}
		lastInClass[l.Priority] = l.Seq
		if l.DeviceID != "dev-1" || l.Kind != w.Kind || l.Priority != w.Priority || !l.CreatedAt.Equal(w.CreatedAt) {
			t.Errorf("seq %d: line %+v for record %+v", l.Seq, l, w)
		}
		if exp := red.Redact(w.Data); !bytes.Equal(l.Data, exp) {
			t.Errorf("seq %d: data\n%s\nwant\n%s", l.Seq, l.Data, exp)
		}
		if sec := containsAny(l.Data, secrets); sec != "" {
			t.Errorf("seq %d: %q reached the consumer", l.Seq, sec)
		}
	}
	for seq := range want {
		if !got[seq] {
			t.Errorf("seq %d never arrived", seq)
		}
	}
	// The raw bytes on the wire, compressed and not.
	payloads := tap.all()
	if len(payloads) == 0 {
		t.Fatal("the wiretap heard nothing")
	}
	for _, p := range payloads {
		if sec := containsAny(p, secrets); sec != "" {
			t.Fatalf("%q on the wire (compressed)", sec)
		}
		zr, err := gzip.NewReader(bytes.NewReader(p))
		if err != nil {
			t.Fatalf("a payload that is not gzip: %v", err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		if sec := containsAny(raw, secrets); sec != "" {
			t.Fatalf("%q on the wire (decompressed)", sec)
		}
	}
	// The device keeps its records whole.
	if r, err := st.Record(written[0].Seq); err != nil || !bytes.Contains(r.Data, []byte("op.jane@example.com")) {
		t.Errorf("the local record was redacted: %s (%v)", r.Data, err)
	}
}

func readConsumed(t *testing.T, path string) []consumer.Line {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []consumer.Line
	dec := jsonDecoder(data)
	for dec.More() {
		var l consumer.Line
		if err := dec.Decode(&l); err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}
