package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ember-edge/ember/daemon/pipeline"
	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/internal/testkit"
)

// The load shape the ingest benchmarks share: 32 connections, as many
// PLCs or gateways, each with 16 messages in flight, which ember
// pipelines into shared group commits (acknowledged in order as they
// land). Each publisher is a gateway for 8 machines,
// each with its own topic: how topics spread matters to ember's external
// client, which keeps each topic's messages in order on one worker.
// BENCH_PUBLISHERS, BENCH_WINDOW and BENCH_TOPICS override them.
var (
	publishers         = envInt("BENCH_PUBLISHERS", 32)
	window             = envInt("BENCH_WINDOW", 16) // unacknowledged messages per publisher
	topicsPerPublisher = envInt("BENCH_TOPICS", 8)
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// ingestPath is one way a PLC's message reaches durable storage.
type ingestPath struct {
	name string
	run  func(b *testing.B, n, base int) stats
}

// BenchmarkDurableIngest measures durable ingest of QoS 1, 200-byte JSON
// alarms (committed to the store, then acknowledged; no inference) from
// 32 publishers, each on its own connection with up to 16 messages
// unacknowledged, through these paths on this machine:
//
//   - mosquitto alone, the baseline: publishers → mosquitto (no
//     persistence) → a plain QoS 1 subscriber; no ember. Rate until both
//     every PUBACK and every delivery; latency publish → PUBACK.
//   - ember's embedded broker: publishers → ember, PUBACK after the group
//     commit. Latency publish → PUBACK.
//   - ember's ingest without MQTT: the same messages handed to the job
//     manager by 32 goroutines, one at a time each (Ingest, not
//     pipelined), so at most 32 share a commit; what the store and
//     pipeline cost without a broker, and what pipelining adds.
//   - ember as a client of mosquitto: publishers → mosquitto → ember,
//     which acknowledges each delivery after its commit. That PUBACK is
//     the durable one (the publisher's comes from mosquitto first), so a
//     proxy between ember and mosquitto times it; latency publish → ember's
//     PUBACK. mosquitto acknowledges the publishers faster than ember
//     drains, so this latency is mostly queueing in front of ember; the
//     rate is what ember sustains. Delivery → ember's PUBACK is reported
//     apart.
//
// ember runs in this process without its dispatcher (see ember), so jobs
// stay queued; the publishers and the proxy share the machine with it.
// Rounds alternate the order of the paths; medians are reported.
// Target: ember embedded >= 20,000 msg/s on 2 cores.
func BenchmarkDurableIngest(b *testing.B) {
	const (
		perRound = 32_000
		rounds   = 3
	)
	mq := testkit.StartMosquitto(b)
	sub := startSubscriber(b, mq.Addr, "baseline/#")
	embedded := startEmber(b, b.TempDir(), fmt.Sprintf("mqtt:\n  embedded: {listen: %q}\n", freeAddr(b)))
	waitOnline(b, embedded.cfg.MQTT.Embedded.Listen)
	proxy := startAckProxy(b, mq.Addr)
	external := startEmber(b, b.TempDir(),
		fmt.Sprintf("mqtt:\n  embedded: {listen: \"\"}\n  external: {url: \"tcp://%s\", client_id: ember-bench}\n", proxy.addr()))
	waitOnline(b, mq.Addr)

	paths := []ingestPath{
		{"mosquitto alone (baseline)", func(b *testing.B, n, base int) stats {
			before := sub.n.Load()
			l := newLoad(n)
			l.run(b, mq.Addr, "baseline", publishers, window, base)
			waitFor(b, time.Minute, "baseline subscriber", func() bool { return sub.n.Load() >= before+int64(n) })
			return l.summarize(l.acked, time.Duration(sub.last.Load()-l.start.UnixNano()))
		}},
		{"ember, embedded broker", func(b *testing.B, n, base int) stats {
			before := embedded.queued(b)
			l := newLoad(n)
			l.run(b, embedded.cfg.MQTT.Embedded.Listen, "plant", publishers, window, base)
			if got := embedded.queued(b) - before; got != n {
				b.Fatalf("embedded: %d jobs committed for %d messages", got, n)
			}
			return l.summarize(l.acked, 0)
		}},
		{"ember ingest without MQTT", func(b *testing.B, n, base int) stats {
			before := embedded.queued(b)
			s := ingestDirect(b, embedded, n, base)
			if got := embedded.queued(b) - before; got != n {
				b.Fatalf("direct: %d jobs committed for %d messages", got, n)
			}
			return s
		}},
		{"ember, client of mosquitto", func(b *testing.B, n, base int) stats {
			before := external.queued(b)
			l := newLoad(n)
			proxy.track(l, base)
			l.run(b, mq.Addr, "plant", publishers, window, base)
			waitFor(b, 2*time.Minute, "ember's acknowledgements to mosquitto", func() bool { return l.nDur.Load() >= int64(n) })
			if got := external.queued(b) - before; got != n {
				b.Fatalf("external: %d jobs committed for %d messages", got, n)
			}
			return l.emberSide(l.summarize(l.durable, 0))
		}},
	}

	// Every run also measures the CPU it took (this process, which holds
	// the publishers and ember, plus mosquitto).
	for i := range paths {
		run := paths[i].run
		paths[i].run = func(b *testing.B, n, base int) stats {
			cpu0, t0 := cpuClock(mq.PID()), time.Now()
			s := run(b, n, base)
			s.cores = (cpuClock(mq.PID()) - cpu0).Seconds() / time.Since(t0).Seconds()
			return s
		}
	}
	base := 0
	for _, p := range paths { // warm up connections, caches and files
		p.run(b, 4_000, base)
		base += 4_000
	}
	b.ResetTimer()
	results := make([][]stats, len(paths))
	for range b.N {
		for r := range rounds {
			for j := range paths {
				k := (r + j) % len(paths)
				results[k] = append(results[k], paths[k].run(b, perRound, base))
				base += perRound
			}
		}
	}
	b.StopTimer()

	fmt.Printf("\ndurable ingest: QoS 1, %d-byte JSON, %d publishers x %d in flight, %d topics, %d messages per round, %d rounds (medians)\n",
		payloadSize, publishers, window, publishers*topicsPerPublisher, perRound, len(results[0]))
	fmt.Printf("  %-30s %10s %10s %10s %12s %7s\n", "path", "msg/s", "p50", "p99", "msg/s ratio", "cores")
	baseRate := medianOf(results[0], func(s stats) float64 { return s.rate })
	for k, p := range paths {
		rate := medianOf(results[k], func(s stats) float64 { return s.rate })
		p50 := time.Duration(medianOf(results[k], func(s stats) float64 { return float64(s.p50) }))
		p99 := time.Duration(medianOf(results[k], func(s stats) float64 { return float64(s.p99) }))
		ratio := medianRatio(results[k], results[0])
		cores := medianOf(results[k], func(s stats) float64 { return s.cores })
		fmt.Printf("  %-30s %10.0f %10s %10s %12.2f %7.2f\n", p.name, rate, p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), ratio, cores)
		unit := []string{"baseline", "embedded", "nomqtt", "external"}[k]
		b.ReportMetric(rate, unit+"-msg/s")
		b.ReportMetric(float64(p99.Microseconds()), unit+"-p99-µs")
		if k > 0 {
			b.ReportMetric(ratio, unit+"/baseline")
		}
	}
	ackP50 := time.Duration(medianOf(results[3], func(s stats) float64 { return float64(s.ackP50) }))
	ackP99 := time.Duration(medianOf(results[3], func(s stats) float64 { return float64(s.ackP99) }))
	fmt.Printf("  ember as a client, from mosquitto's delivery to ember's PUBACK: p50 %v, p99 %v\n",
		ackP50.Round(10*time.Microsecond), ackP99.Round(10*time.Microsecond))
	fmt.Printf("  (up to %d messages were in flight from mosquitto to ember, max_inflight_messages 1000 notwithstanding)\n", proxy.inFlight())
	for _, e := range []struct {
		name string
		e    *ember
	}{{"embedded", embedded}, {"external", external}} {
		cs := e.e.st.CommitStats()
		fmt.Printf("  group commit (%s): %d writes in %d transactions, %.1f per commit\n", e.name, cs.Writes, cs.Batches, float64(cs.Writes)/float64(max(cs.Batches, 1)))
	}
	fmt.Printf("  (cores: CPU of this process, which runs the publishers and ember, plus mosquitto's, per second;\n"+
		"   baseline rate %.0f msg/s; target for ember embedded: >= 20000 msg/s on 2 cores)\n\n", baseRate)
}

// BenchmarkOutboxGrowth checks that the cost of a message does not grow
// with the outbox. One store is filled directly (concurrent Appends,
// group-committed) to 10k, 100k and 1M outbox records of a typical
// result's size; a reference store is kept at 10k. At each size both are
// measured in alternating rounds: durable ingest through the embedded
// broker (as BenchmarkDurableIngest does) and appending results (what
// finishing a job writes). The ratio grown/reference at 1M, the 1M/10k
// ratio, should be near 1.
func BenchmarkOutboxGrowth(b *testing.B) {
	const (
		perRun  = 8_000
		rounds  = 4
		refSize = 10_000
	)
	levels := []int{10_000, 100_000, 1_000_000}
	record := resultRecord(b)
	grown := startEmber(b, b.TempDir(), fmt.Sprintf("mqtt:\n  embedded: {listen: %q}\n", freeAddr(b)))
	ref := startEmber(b, b.TempDir(), fmt.Sprintf("mqtt:\n  embedded: {listen: %q}\n", freeAddr(b)))
	for _, e := range []*ember{grown, ref} {
		waitOnline(b, e.cfg.MQTT.Embedded.Listen)
	}
	fill(b, ref.st, record, refSize)

	base := 0
	measure := func(e *ember) (ingest, appends stats) {
		l := newLoad(perRun)
		l.run(b, e.cfg.MQTT.Embedded.Listen, "plant", publishers, window, base)
		base += perRun
		ingest = l.summarize(l.acked, 0)
		appends = appendRate(b, e.st, record, perRun, publishers)
		if e == ref { // keep the reference at its size
			if _, err := ref.st.PruneOutbox(store.Limits{MaxRecords: refSize}, time.Now(), perRun, nil); err != nil {
				b.Fatal(err)
			}
		}
		return ingest, appends
	}
	type level struct {
		records                  int
		ingest, append           stats   // grown store, medians
		ingestRatio, appendRatio float64 // grown/reference, median of rounds
		refIngest, refAppend     float64 // the reference's rates, medians
		outboxMiB                float64
	}
	var out []level
	b.ResetTimer()
	for range b.N {
		filled := 0
		out = out[:0]
		for _, n := range levels {
			b.StopTimer()
			start := time.Now()
			fill(b, grown.st, record, n-filled)
			fmt.Fprintf(os.Stderr, "outbox: filled %d records in %v\n", n-filled, time.Since(start).Round(time.Millisecond))
			for _, e := range []*ember{grown, ref} { // warm up
				measure(e)
			}
			if _, err := grown.st.PruneOutbox(store.Limits{MaxRecords: uint64(n)}, time.Now(), 1<<30, nil); err != nil {
				b.Fatal(err)
			}
			filled = n
			b.StartTimer()

			var gi, ga, ri, ra []stats
			for r := range rounds {
				order := []*ember{grown, ref}
				if r%2 == 1 {
					order = []*ember{ref, grown}
				}
				for _, e := range order {
					i, a := measure(e)
					if e == grown {
						gi, ga = append(gi, i), append(ga, a)
					} else {
						ri, ra = append(ri, i), append(ra, a)
					}
				}
			}
			// Appends grew the outbox past n; the next fill tops it up.
			filled += rounds * perRun
			os, err := grown.st.OutboxStats()
			if err != nil {
				b.Fatal(err)
			}
			out = append(out, level{
				records:     n,
				ingest:      stats{rate: medianOf(gi, rate), p50: medianDur(gi, p50), p99: medianDur(gi, p99)},
				append:      stats{rate: medianOf(ga, rate), p50: medianDur(ga, p50), p99: medianDur(ga, p99)},
				ingestRatio: medianRatio(gi, ri), appendRatio: medianRatio(ga, ra),
				refIngest: medianOf(ri, rate), refAppend: medianOf(ra, rate),
				outboxMiB: float64(os.Bytes) / (1 << 20),
			})
		}
	}
	b.StopTimer()

	fmt.Printf("\noutbox growth: durable ingest (embedded broker, %d publishers x %d) and result appends (%d concurrent),\n"+
		"  %d of each per run, %d rounds alternating with a reference store of %d records (medians)\n",
		publishers, window, publishers, perRun, rounds, refSize)
	fmt.Printf("  %-9s %10s %9s %9s %9s %7s %11s %9s %9s %9s %7s %10s\n", "records", "ingest/s", "p50", "p99", "ref", "ratio",
		"appends/s", "p50", "p99", "ref", "ratio", "outbox MiB")
	for _, lv := range out {
		fmt.Printf("  %-9d %10.0f %9s %9s %9.0f %7.2f %11.0f %9s %9s %9.0f %7.2f %10.0f\n", lv.records,
			lv.ingest.rate, lv.ingest.p50.Round(10*time.Microsecond), lv.ingest.p99.Round(10*time.Microsecond), lv.refIngest, lv.ingestRatio,
			lv.append.rate, lv.append.p50.Round(10*time.Microsecond), lv.append.p99.Round(10*time.Microsecond), lv.refAppend, lv.appendRatio, lv.outboxMiB)
	}
	last := out[len(out)-1]
	fmt.Printf("  1M/10k (1M store vs the 10k reference, alternating): ingest %.2f, append %.2f (flat is 1)\n\n",
		last.ingestRatio, last.appendRatio)
	b.ReportMetric(last.ingestRatio, "ingest-1M/10k")
	b.ReportMetric(last.appendRatio, "append-1M/10k")
	b.ReportMetric(last.ingest.rate, "ingest-1M-msg/s")
	b.ReportMetric(last.append.rate, "append-1M/s")
}

func rate(s stats) float64 { return s.rate }
func p50(s stats) float64  { return float64(s.p50) }
func p99(s stats) float64  { return float64(s.p99) }

func medianDur(xs []stats, f func(stats) float64) time.Duration {
	return time.Duration(medianOf(xs, f))
}

// resultRecord is an outbox record the size of a finished alarm job's
// result (about 700 bytes of JSON with its input).
func resultRecord(b *testing.B) store.Record {
	data, err := json.Marshal(map[string]any{
		"job_id": 123456, "seq": 123456, "pipeline": "alarms", "device_id": "bench", "request_id": "m-000123456",
		"topic": "plant/line3/press-04/alarm", "output": map[string]any{"severity": "high", "action": "reduce press speed and inspect cylinder 2", "shutdown": false},
		"model": "qwen2.5-0.5b-instruct-q4_k_m", "model_sha256": "9f1c0e5e0c3d0c4a86a8a05e8c1d0ad7c3a3a1f86a1a8b3a0ad3e1b4e1f1c2d3",
		"created_at": "2026-03-02T07:14:01.234Z", "received_at": "2026-03-02T07:14:00.123Z", "boot": 3,
		"finish_reason": "stop", "prompt_tokens": 87, "completion_tokens": 24, "duration_ms": 812,
		"input": map[string]any{"id": "m-000123456", "machine": "press-04", "code": "E-217", "text": "hydraulic pressure low on cylinder 2", "value": 81.5},
	})
	if err != nil {
		b.Fatal(err)
	}
	return store.Record{Kind: store.KindResult, DeviceID: "bench", Pipeline: "alarms", Priority: 5, Classification: store.ClassShared, Data: data}
}

// fill appends n records from many goroutines, so that group commits
// carry hundreds of records each.
func fill(b *testing.B, st *store.Store, rec store.Record, n int) {
	const workers = 512
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				r := rec
				r.JobID = uint64(i + 1)
				if _, err := st.Append(context.Background(), r, nil, time.Now()); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// appendRate appends n records from workers goroutines, one at a time
// each, and times every Append.
func appendRate(b *testing.B, st *store.Store, rec store.Record, n, workers int) stats {
	lat := make([]time.Duration, n)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				t0 := time.Now()
				if _, err := st.Append(context.Background(), rec, nil, t0); err != nil {
					panic(err)
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	slices.Sort(lat)
	return stats{rate: float64(n) / took.Seconds(), p50: lat[n/2], p99: lat[n*99/100]}
}

func medianOf(xs []stats, f func(stats) float64) float64 {
	v := make([]float64, len(xs))
	for i, x := range xs {
		v[i] = f(x)
	}
	return median(v)
}

// medianRatio is the median of per-round rate ratios a/b.
func medianRatio(a, b []stats) float64 {
	v := make([]float64, len(a))
	for i := range a {
		v[i] = a[i].rate / b[i].rate
	}
	return median(v)
}

// ingestDirect hands n messages to e's job manager from publishers
// goroutines, each waiting for its message to be committed before the
// next, as the embedded broker does per connection; it times each.
func ingestDirect(b *testing.B, e *ember, n, base int) stats {
	lat := make([]time.Duration, n)
	start := time.Now()
	var wg sync.WaitGroup
	for k := range publishers {
		wg.Go(func() {
			for j, i := 0, k; i < n; j, i = j+1, i+publishers {
				msg := pipeline.Message{
					Broker: "embedded", Topic: fmt.Sprintf("plant/line%d/press-%03d/alarm", k%4, k*topicsPerPublisher+j%topicsPerPublisher),
					Payload: payload(base + i), QoS: 1, Client: fmt.Sprintf("direct-%d", k), PacketID: uint16(j%65535 + 1),
					Received: time.Now(),
				}
				t0 := time.Now()
				if err := e.intake.Ingest(context.Background(), msg); err != nil {
					panic(err)
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	slices.Sort(lat)
	return stats{rate: float64(n) / took.Seconds(), p50: lat[n/2], p99: lat[n*99/100]}
}
