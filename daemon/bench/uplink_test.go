package bench

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
	n               int
	prefill, drain  time.Duration
	cpu             time.Duration // this process's CPU time during the drain
	messages, bytes int
}

// uplinkCPU returns this process's CPU time so far (user and system).
func uplinkCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
		Outbox: uplinkOutbox{st}, Settings: st, SettingsNotFound: store.ErrNotFound, Redact: rules})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start, cpu0 := time.Now(), uplinkCPU()
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
	r.drain, r.cpu = time.Since(start), uplinkCPU()-cpu0
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

// uplinkMedian returns the run with the median drain time.
func uplinkMedian(rs []uplinkRun) uplinkRun {
	slices.SortFunc(rs, func(a, b uplinkRun) int { return cmp.Compare(a.drain, b.drain) })
	return rs[len(rs)/2]
}

// BenchmarkUplinkDrain measures how fast the uplink drains a backlog of
// 200-byte records into a local mosquitto (batches of 256, window 8,
// gzip), from 10k, 100k and 1M records of backlog
// (BENCH_UPLINK_SIZES=10000,100000 to choose), against mosquitto's raw
// QoS 1 rate with one record per message and the same window. Backlogs
// up to 100k run BENCH_UPLINK_ROUNDS rounds (default 3) alternating with
// the baseline, and report medians; 1M runs once. Targets: ≥ 10,000
// records/s on 2 cores, and a CPU cost per record flat from 10k to 1M
// records of backlog.
func BenchmarkUplinkDrain(b *testing.B) {
	const size, window, rawN = 200, 8, 30_000
	rounds := 3
	if v, err := strconv.Atoi(os.Getenv("BENCH_UPLINK_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	mq := testkit.StartMosquitto(b)
	rules := []redact.Rule{{Builtin: "email"}, {Builtin: "phone"}, {Builtin: "ipv4"}, {Builtin: "serial"}, {Field: "machine"}}
	sizes := uplinkSizes()
	runs := make(map[int][]uplinkRun)
	var redacted []uplinkRun
	var raws []time.Duration
	for round := range rounds {
		raws = append(raws, uplinkRawQoS1(b, mq, rawN, size, window))
		for _, n := range sizes {
			if n > 100_000 && round > 0 {
				continue
			}
			runs[n] = append(runs[n], uplinkDrain(b, mq, n, size, nil))
		}
		redacted = append(redacted, uplinkDrain(b, mq, 100_000, size, rules))
	}
	slices.Sort(raws)
	raw := raws[len(raws)/2]
	rawRate := float64(rawN) / raw.Seconds()

	fmt.Printf("\nuplink drain: %d-byte records, batches of 256 (gzip), window %d, into mosquitto on loopback; median of %d rounds (1M: one)\n",
		size, window, rounds)
	fmt.Printf("%-22s %9s %9s %11s %10s %11s %7s %10s %8s\n", "backlog", "prefill", "drain", "records/s", "µs/record",
		"cpu µs/rec", "msgs", "bytes/msg", "vs raw")
	row := func(name string, r uplinkRun) (rate, cpuPer float64) {
		rate = float64(r.n) / r.drain.Seconds()
		cpuPer = r.cpu.Seconds() * 1e6 / float64(r.n)
		fmt.Printf("%-22s %9s %9s %11.0f %10.1f %11.1f %7d %10.0f %7.1fx\n", name, r.prefill.Round(time.Millisecond),
			r.drain.Round(time.Millisecond), rate, r.drain.Seconds()*1e6/float64(r.n), cpuPer, r.messages,
			float64(r.bytes)/float64(r.messages), rate/rawRate)
		return rate, cpuPer
	}
	var firstCPU, lastCPU float64
	for i, n := range sizes {
		rate, cpuPer := row(strconv.Itoa(n), uplinkMedian(runs[n]))
		if i == 0 {
			firstCPU = cpuPer
		}
		lastCPU = cpuPer
		if n == 100_000 {
			b.ReportMetric(rate, "records/s")
		}
	}
	row("100000 + redaction", uplinkMedian(redacted))
	fmt.Printf("%-22s %9s %9s %11.0f %10.1f %11s %7d %10d %7.1fx\n", "raw QoS 1 (baseline)", "-", raw.Round(time.Millisecond),
		rawRate, raw.Seconds()*1e6/float64(rawN), "-", rawN, size, 1.0)
	if len(sizes) > 1 {
		fmt.Printf("CPU cost per record, %d vs %d records of backlog: %.2f (1.00 is flat)\n", sizes[len(sizes)-1], sizes[0], lastCPU/firstCPU)
	}
	b.ReportMetric(rawRate, "raw-records/s")
}
