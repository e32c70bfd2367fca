package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/internal/testkit"
	"github.com/ember-edge/ember/sync/redact"
	"github.com/ember-edge/ember/sync/uplink"
)

// uplinkOutbox adapts the store to uplink.Outbox, as the daemon does.
type uplinkOutbox struct{ *store.Store }

func (s uplinkOutbox) PendingRecords(p, max int) ([]uplink.Record, error) {
	recs, err := s.Store.PendingRecords(p, max)
	out := make([]uplink.Record, len(recs))
	for i, r := range recs {
		out[i] = uplink.Record(r)
	}
	return out, err
}

func (s uplinkOutbox) SyncBacklog() (uplink.Backlog, error) {
	b, err := s.Store.SyncBacklog()
	return uplink.Backlog(b), err
}

// uplinkRecordData is a record's data of exactly size bytes of JSON.
func uplinkRecordData(i, size int) []byte {
	head := fmt.Sprintf(`{"machine":"press-%02d","code":"E-%03d","value":%d.5,"text":"`, i%40, i%500, i%1000)
	tail := `"}`
	pad := size - len(head) - len(tail)
	words := "hydraulic pressure low on cylinder two reduce speed inspect seals "
	var b strings.Builder
	b.WriteString(head)
	for b.Len() < len(head)+pad {
		b.WriteString(words[(i+b.Len())%len(words):][:1])
	}
	b.WriteString(tail)
	return []byte(b.String())
}

// uplinkPrefill appends n records of size bytes of data from many
// goroutines, so that each group commit carries about a thousand.
func uplinkPrefill(b *testing.B, st *store.Store, n, size int) time.Duration {
	const workers = 1024
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Value
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				r := store.Record{Kind: store.KindTelemetry, DeviceID: "bench", Pipeline: "line3", Priority: 3,
					Data: uplinkRecordData(i, size)}
				if _, err := st.Append(context.Background(), r, nil, time.Now()); err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// uplinkTap subscribes to topic and keeps every payload, decoding them
// only afterwards so the count costs the drain nothing.
type uplinkTap struct {
	cli      paho.Client
	mu       sync.Mutex
	payloads [][]byte
}

func startUplinkTap(b *testing.B, url, topic string) *uplinkTap {
	t := &uplinkTap{}
	t.cli = paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("tap-" + strconv.FormatInt(time.Now().UnixNano(), 36)).
		SetOrderMatters(false))
	if tok := t.cli.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	tok := t.cli.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) {
		t.mu.Lock()
		t.payloads = append(t.payloads, m.Payload())
		t.mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	return t
}

// records decodes what arrived: distinct records, messages, bytes.
func (t *uplinkTap) records(b *testing.B) (records, messages, bytes int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	seen := map[uint64]bool{}
	for _, p := range t.payloads {
		env, err := uplink.DecodeEnvelope(p, 0)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range env.Records {
			seen[r.Seq] = true
		}
		bytes += len(p)
	}
	return len(seen), len(t.payloads), bytes
}

type uplinkRun struct {
	n                 int
	prefill, drain    time.Duration
	messages, bytes   int
	uncompressedBytes int
}

// uplinkDrain prefills a store with n records and times the uplink
// sending them all into mosquitto (until every class's cursor has
// moved over them, i.e. every batch's PUBACK came back).
func uplinkDrain(b *testing.B, mq *testkit.Mosquitto, n, size int, rules []redact.Rule) uplinkRun {
	dir := b.TempDir()
	st, err := store.Open(filepath.Join(dir, "ember.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	r := uplinkRun{n: n}
	r.prefill = uplinkPrefill(b, st, n, size)
	device := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	tap := startUplinkTap(b, mq.URL(), "fleet/v1/bench/"+device+"/#")
	defer tap.cli.Disconnect(0)
	u, err := uplink.New(uplink.Options{URL: mq.URL(), Fleet: "bench", Device: device,
		Outbox: uplinkOutbox{st}, Settings: st, Redact: rules})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- u.Run(ctx) }()
	for {
		bl, err := st.SyncBacklog()
		if err != nil {
			b.Fatal(err)
		}
		if bl.Records == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.drain = time.Since(start)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, msgs, bytes := tap.records(b)
		if got == n {
			r.messages, r.bytes = msgs, bytes
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the subscriber counted %d of %d records", got, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return r
}

// uplinkRawQoS1 is the baseline: one paho publisher, QoS 1, the same
// window of messages awaiting PUBACK, one record per message, no ember.
func uplinkRawQoS1(b *testing.B, mq *testkit.Mosquitto, n, size, window int) time.Duration {
	cli := paho.NewClient(paho.NewClientOptions().AddBroker(mq.URL()).SetClientID("raw-publisher").
		SetMaxResumePubInFlight(window))
	if tok := cli.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	defer cli.Disconnect(0)
	payloads := make([][]byte, 1000)
	for i := range payloads {
		payloads[i] = uplinkRecordData(i, size)
	}
	sem := make(chan struct{}, window)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		sem <- struct{}{}
		tok := cli.Publish("fleet/v1/bench/raw/telemetry", 1, false, payloads[i%len(payloads)])
		wg.Go(func() {
			tok.Wait()
			if tok.Error() != nil {
				b.Error(tok.Error())
			}
			<-sem
		})
	}
	wg.Wait()
	return time.Since(start)
}

func uplinkSizes() []int {
	v := os.Getenv("BENCH_UPLINK_SIZES")
	if v == "" {
		return []int{10_000, 100_000, 1_000_000}
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

// BenchmarkUplinkDrain measures how fast the uplink drains a backlog of
// 200-byte records into a local mosquitto (batches of 256, window 8,
// gzip), from 10k, 100k and 1M records of backlog
// (BENCH_UPLINK_SIZES=10000,100000 to choose), against mosquitto's raw
// QoS 1 rate with one record per message and the same window. Targets:
// ≥ 10,000 records/s on 2 cores, and a cost per record flat from 10k to
// 1M records of backlog.
func BenchmarkUplinkDrain(b *testing.B) {
	const size, window = 200, 8
	mq := testkit.StartMosquitto(b)
	rawN := 50_000
	raw := uplinkRawQoS1(b, mq, rawN, size, window)
	rawRate := float64(rawN) / raw.Seconds()

	var runs []uplinkRun
	for _, n := range uplinkSizes() {
		runs = append(runs, uplinkDrain(b, mq, n, size, nil))
	}
	redacted := uplinkDrain(b, mq, 100_000, size, []redact.Rule{
		{Builtin: "email"}, {Builtin: "phone"}, {Builtin: "ipv4"}, {Builtin: "serial"}, {Field: "machine"}})

	fmt.Printf("\nuplink drain: %d-byte records, batches of 256 (gzip), window %d, into mosquitto on loopback\n", size, window)
	fmt.Printf("%-22s %10s %10s %12s %11s %10s %12s %9s\n", "backlog", "prefill", "drain", "records/s", "µs/record", "msgs", "bytes/msg", "vs raw")
	row := func(name string, r uplinkRun) float64 {
		rate := float64(r.n) / r.drain.Seconds()
		fmt.Printf("%-22s %10s %10s %12.0f %11.1f %10d %12.0f %8.1fx\n", name, r.prefill.Round(time.Millisecond),
			r.drain.Round(time.Millisecond), rate, r.drain.Seconds()*1e6/float64(r.n), r.messages,
			float64(r.bytes)/float64(r.messages), rate/rawRate)
		return rate
	}
	var first, last float64
	for i, r := range runs {
		rate := row(strconv.Itoa(r.n), r)
		if i == 0 {
			first = rate
		}
		last = rate
		if r.n == 100_000 {
			b.ReportMetric(rate, "records/s")
		}
	}
	row("100000 + redaction", redacted)
	fmt.Printf("%-22s %10s %10s %12.0f %11.1f %10d %12d %8.1fx\n", "raw QoS 1 (baseline)", "-", raw.Round(time.Millisecond),
		rawRate, raw.Seconds()*1e6/float64(rawN), rawN, size, 1.0)
	if len(runs) > 1 {
		fmt.Printf("cost per record, %d vs %d records of backlog: %.2f (1.00 is flat)\n", runs[len(runs)-1].n, runs[0].n, first/last)
	}
	b.ReportMetric(rawRate, "raw-records/s")
}
