package bench

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/internal/testkit"
	"github.com/ember-edge/ember/sync/collector/collectortest"
	"github.com/ember-edge/ember/sync/collector/pgsink"
	"github.com/ember-edge/ember/sync/uplink"
)

// TestMain removes the throwaway PostgreSQL cluster the collector
// benchmarks start.
func TestMain(m *testing.M) { os.Exit(testkit.RunMain(m)) }

// collectorFleet names each run's fleet apart, so that nothing of one
// run reaches the next one's collectors.
var collectorFleet atomic.Int64

// collectorRecord is a 200-byte telemetry record, as BenchmarkUplinkDrain
// sends: one kind and one class, so batches are full (256 records).
func collectorRecord(device string) collectortest.Record {
	return func(i int) store.Record {
		return store.Record{Kind: store.KindTelemetry, DeviceID: device, Pipeline: "line3", Priority: 3, Data: uplinkRecordData(i, 200)}
	}
}

type collectorRun struct {
	collectors      int
	n               int
	drain           time.Duration
	messages, batch uint64
}

// collectorDrain fills devices stores with n records in all, starts k
// collectors of one shared subscription over a fresh database, and times
// the devices' uplinks from their start until every record is confirmed
// on its device (so committed in PostgreSQL and acknowledged back).
// With keep it returns the stored rows too (for the COPY baseline).
func collectorDrain(b *testing.B, mq *testkit.Mosquitto, n, devices, k int, keep bool) (collectorRun, [][]any) {
	db := testkit.Postgres(b)
	fleet := fmt.Sprintf("bench%d", collectorFleet.Add(1))
	devs := make([]*collectortest.Device, devices)
	var wg sync.WaitGroup
	for i := range devs {
		id := fmt.Sprintf("dev-%02d", i)
		d, err := collectortest.NewDevice(b.TempDir(), id, uplink.Options{URL: mq.URL(), Fleet: fleet}, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer d.Stop()
		devs[i] = d
		per := n / devices
		if i == 0 {
			per += n % devices
		}
		wg.Go(func() {
			if err := d.Append(per, 0, 512, collectorRecord(id)); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	cs, err := collectortest.StartCollectors(mq.URL(), fleet, "bench", db, k)
	if err != nil {
		b.Fatal(err)
	}
	st0 := cs.Stats() // the probes StartCollectors sent
	start := time.Now()
	for _, d := range devs {
		d.Start()
	}
	deadline := start.Add(10 * time.Minute)
	for !collectorSettled(devs) {
		if time.Now().After(deadline) {
			b.Fatalf("%d records through %d collectors not confirmed within 10 minutes", n, k)
		}
		time.Sleep(5 * time.Millisecond)
	}
	r := collectorRun{collectors: k, n: n, drain: time.Since(start)}
	st := cs.Stats()
	r.messages, r.batch = st.Messages-st0.Messages, st.Batches-st0.Batches
	cs.Stop()
	for _, d := range devs {
		d.Stop()
	}
	rows := collectorRows(b, db, n, keep)
	return r, rows
}

func collectorSettled(devs []*collectortest.Device) bool {
	for _, d := range devs {
		if !d.Settled() {
			return false
		}
	}
	return true
}

// collectorColumns are what pgsink writes, data as text (COPY takes it
// into jsonb as pgsink's own COPY does).
var collectorColumns = []string{"device_id", "outbox_id", "seq", "kind", "priority", "pipeline", "job_id",
	"created_at", "boot", "sha256", "fleet", "received_at", "data"}

// collectorRows checks the table holds n records and, with keep, reads
// them back.
func collectorRows(b *testing.B, db string, n int, keep bool) [][]any {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	var count int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM ember_records`).Scan(&count); err != nil {
		b.Fatal(err)
	}
	if count != n {
		b.Fatalf("%d records in the table, want %d", count, n)
	}
	if !keep {
		return nil
	}
	sel := strings.Join(collectorColumns[:len(collectorColumns)-1], ", ") + ", data::text"
	rows, err := conn.Query(ctx, `SELECT `+sel+` FROM ember_records`)
	if err != nil {
		b.Fatal(err)
	}
	var out [][]any
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return out
}

// collectorCopy is the baseline: the same rows into the same (fresh,
// migrated) table with one COPY, no broker, no decoding, no conflict
// check — as fast as this machine's PostgreSQL takes these rows.
func collectorCopy(b *testing.B, rows [][]any) time.Duration {
	ctx := context.Background()
	s, err := pgsink.Open(ctx, testkit.Postgres(b))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	got, err := s.Pool().CopyFrom(ctx, pgx.Identifier{"ember_records"}, collectorColumns, pgx.CopyFromRows(rows))
	if err != nil {
		b.Fatal(err)
	}
	d := time.Since(start)
	if int(got) != len(rows) {
		b.Fatalf("COPY wrote %d of %d rows", got, len(rows))
	}
	return d
}

// collectorLatency appends records on one device at rate per second for
// dur, with k collectors running, and returns each record's time from
// its Append call to the moment the device's confirmed cursor covered
// it.
func collectorLatency(b *testing.B, mq *testkit.Mosquitto, rate int, dur time.Duration, k int) (lat []time.Duration, achieved float64) {
	db := testkit.Postgres(b)
	fleet := fmt.Sprintf("bench%d", collectorFleet.Add(1))
	type confirm struct {
		through uint64
		at      time.Time
	}
	var mu sync.Mutex
	var confirms []confirm
	onConfirm := func(_ int, through uint64, at time.Time) {
		mu.Lock()
		confirms = append(confirms, confirm{through, at})
		mu.Unlock()
	}
	d, err := collectortest.NewDevice(b.TempDir(), "dev-rate", uplink.Options{URL: mq.URL(), Fleet: fleet}, onConfirm)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Stop()
	cs, err := collectortest.StartCollectors(mq.URL(), fleet, "bench", db, k)
	if err != nil {
		b.Fatal(err)
	}
	defer cs.Stop()
	d.Start()
	time.Sleep(200 * time.Millisecond) // connected

	// Every 10 ms, rate/100 appends, each from its own goroutine (an
	// append waits for its group commit's fsync).
	type appended struct {
		seq uint64
		at  time.Time
	}
	var amu sync.Mutex
	var apps []appended
	var wg sync.WaitGroup
	rec := collectorRecord("dev-rate")
	tick := time.NewTicker(10 * time.Millisecond)
	start := time.Now()
	i := 0
	for time.Since(start) < dur {
		<-tick.C
		for due := int(time.Since(start).Seconds() * float64(rate)); i < due; i++ {
			wg.Go(func() {
				at := time.Now()
				r, err := d.AppendOne(rec(i))
				if err != nil {
					b.Error(err)
					return
				}
				amu.Lock()
				apps = append(apps, appended{r.Seq, at})
				amu.Unlock()
			})
		}
	}
	tick.Stop()
	wg.Wait()
	achieved = float64(len(apps)) / time.Since(start).Seconds()
	deadline := time.Now().Add(time.Minute)
	for !d.Settled() {
		if time.Now().After(deadline) {
			b.Fatal("records appended at a steady rate not confirmed within a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, a := range apps {
		j := sort.Search(len(confirms), func(j int) bool { return confirms[j].through >= a.seq })
		if j == len(confirms) {
			b.Fatalf("seq %d confirmed by no cursor move", a.seq)
		}
		lat = append(lat, confirms[j].at.Sub(a.at))
	}
	slices.Sort(lat)
	return lat, achieved
}

func collectorMedian(rs []collectorRun) collectorRun {
	slices.SortFunc(rs, func(a, b collectorRun) int { return cmp.Compare(a.drain, b.drain) })
	return rs[len(rs)/2]
}

// BenchmarkCollector measures the fleet side of confirmed delivery: a
// backlog of BENCH_COLLECTOR_RECORDS records (default 100,000; 200-byte
// telemetry, batches of 256, gzip) on BENCH_COLLECTOR_DEVICES in-process
// devices (default 4: real stores, real uplinks with confirm:
// collector) drained through mosquitto into PostgreSQL by 1 and by 2
// collectors of one MQTT 5 shared subscription (each with its own pgx
// pool), timed until every record is confirmed on its device; against
// the same rows put into the same table with one COPY (pgx CopyFrom),
// the most this machine's PostgreSQL takes. BENCH_COLLECTOR_ROUNDS
// rounds (default 3) alternate the order; medians are reported. Target:
// 2 collectors ≥ 0.5× COPY (printed, not asserted). Then the latency
// from a device's append to its confirmed cursor covering the record,
// with records appended at 1,000/s for BENCH_COLLECTOR_SECONDS
// (default 10) through 2 collectors. For a quick run:
// BENCH_COLLECTOR_RECORDS=10000 BENCH_COLLECTOR_ROUNDS=1
// BENCH_COLLECTOR_SECONDS=2.
func BenchmarkCollector(b *testing.B) {
	n := envInt("BENCH_COLLECTOR_RECORDS", 100_000)
	devices := envInt("BENCH_COLLECTOR_DEVICES", 4)
	rounds := envInt("BENCH_COLLECTOR_ROUNDS", 3)
	seconds := envInt("BENCH_COLLECTOR_SECONDS", 10)
	const rate = 1000
	mq := testkit.StartMosquitto(b)

	runs := map[int][]collectorRun{}
	var copies []time.Duration
	var rows [][]any
	for round := range rounds {
		order := []int{1, 2, 0} // 0: the COPY baseline
		if round%2 == 1 {
			slices.Reverse(order)
		}
		if rows == nil { // the baseline copies the rows a collector stored
			r, kept := collectorDrain(b, mq, n, devices, order[0], true)
			runs[r.collectors] = append(runs[r.collectors], r)
			rows, order = kept, order[1:]
		}
		for _, k := range order {
			if k == 0 {
				copies = append(copies, collectorCopy(b, rows))
				continue
			}
			r, _ := collectorDrain(b, mq, n, devices, k, false)
			runs[k] = append(runs[k], r)
		}
	}
	slices.Sort(copies)
	cp := copies[len(copies)/2]
	copyRate := float64(n) / cp.Seconds()

	fmt.Printf("\ncollector: %d records of 200 bytes on %d devices (batches of 256, gzip, confirm: collector) through mosquitto\n"+
		"into PostgreSQL, timed until every record is confirmed on its device; median of %d rounds\n", n, devices, rounds)
	fmt.Printf("  %-34s %9s %11s %9s %9s %9s\n", "path", "time", "records/s", "vs COPY", "messages", "batches")
	fmt.Printf("  %-34s %9s %11.0f %8.2fx %9s %9s\n", "one COPY of the same rows (limit)", cp.Round(time.Millisecond), copyRate, 1.0, "-", "-")
	var two float64
	for _, k := range []int{1, 2} {
		r := collectorMedian(runs[k])
		rate := float64(n) / r.drain.Seconds()
		name := fmt.Sprintf("%d collector", k)
		if k > 1 {
			name += "s"
			two = rate / copyRate
			b.ReportMetric(rate, "records/s")
		}
		fmt.Printf("  %-34s %9s %11.0f %8.2fx %9d %9d\n", name+" (shared subscription)", r.drain.Round(time.Millisecond), rate,
			rate/copyRate, r.messages, r.batch)
	}
	verdict := "met"
	if two < 0.5 {
		verdict = "NOT met"
	}
	fmt.Printf("  target: 2 collectors >= 0.5x COPY: %s (%.2fx)\n", verdict, two)
	b.ReportMetric(copyRate, "copy-records/s")

	lat, achieved := collectorLatency(b, mq, rate, time.Duration(seconds)*time.Second, 2)
	pct := func(p float64) time.Duration {
		return lat[min(int(p*float64(len(lat))), len(lat)-1)].Round(100 * time.Microsecond)
	}
	fmt.Printf("\ncollector latency: one device appending %d records/s (%.0f achieved) for %ds, 2 collectors; append -> confirmed cursor\n",
		rate, achieved, seconds)
	fmt.Printf("  %-10s %10s %10s %10s %10s\n", "records", "p50", "p90", "p99", "max")
	fmt.Printf("  %-10d %10s %10s %10s %10s\n\n", len(lat), pct(0.5), pct(0.9), pct(0.99), lat[len(lat)-1].Round(100*time.Microsecond))
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, "p99-ms")
}

// BenchmarkFleetSimulation runs BENCH_FLEET_DEVICES in-process devices
// (default 1,000; each its own store in its own directory and its own
// uplink, confirm: collector, confirm timeout 2 s) with
// BENCH_FLEET_RECORDS records of backlog each (default 100; every 17th
// local), connecting within 1 s through one proxy that breaks links at
// random for the first 10 s, into mosquitto, 2 collectors of one shared
// subscription and PostgreSQL. It prints the time until every record is
// confirmed on its device, lost records (must be 0), rows beyond one
// per key (0: the primary key), and what the faults cost in records
// sent again.
func BenchmarkFleetSimulation(b *testing.B) {
	devices := envInt("BENCH_FLEET_DEVICES", 1000)
	records := envInt("BENCH_FLEET_RECORDS", 100)
	mq := testkit.StartMosquitto(b)
	res, err := collectortest.RunFleet(b, collectortest.FleetOptions{Devices: devices, Records: records, Collectors: 2,
		Broker: mq.Addr, DB: testkit.Postgres(b), Dir: b.TempDir(), FaultFor: 10 * time.Second, Timeout: 10 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	fmt.Printf("\nfleet simulation: %d devices x %d records (%d shared), links broken at random for 10s, 2 collectors, PostgreSQL\n",
		res.Devices, records, res.Shared)
	fmt.Printf("  %-12s %9s %11s %6s %11s %9s %9s %11s %9s %9s %12s\n", "setup", "drain", "records/s", "missing", "duplicates",
		"faults", "connects", "sent/shared", "resends", "stored", "dup dropped")
	fmt.Printf("  %-12s %9s %11.0f %6d %11d %9d %9d %10.2fx %9d %9d %12d\n", res.Setup.Round(time.Millisecond),
		res.Drain.Round(time.Millisecond), float64(res.Shared)/res.Drain.Seconds(), res.Lost, res.Duplicates, res.Faults,
		res.Connections, float64(res.Sent)/float64(max(res.Shared, 1)), res.Resends, res.Stored, int(res.Stored)-res.Rows)
	fmt.Printf("  devices unsettled at the end: %d (missing records on an unsettled device are still held there, unconfirmed);\n"+
		"  rows that are no shared record: %d; messages at the collectors: %d\n\n", res.Unsettled, res.Extra, res.Messages)
	if res.Lost != 0 || res.Unsettled != 0 || res.Duplicates != 0 || res.Extra != 0 {
		b.Errorf("lost %d, unsettled devices %d, duplicated %d, extra rows %d", res.Lost, res.Unsettled, res.Duplicates, res.Extra)
	}
	b.ReportMetric(res.Drain.Seconds(), "drain-s")
	b.ReportMetric(float64(res.Lost), "lost")
}
