package collector_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/internal/testkit"
	"github.com/ember-edge/ember/sync/collector"
	"github.com/ember-edge/ember/sync/collector/pgsink"
	"github.com/ember-edge/ember/sync/uplink"
)

// The test binary runs itself as a collector process when this is set,
// so that a test can SIGKILL a collector mid-batch.
const childEnv = "EMBER_TEST_COLLECTOR"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	os.Exit(testkit.RunMain(m))
}

// runChild is `emberctl collector run` in miniature: URL, fleet and DB
// from the environment.
func runChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	var s *pgsink.Sink
	var err error
	for range 100 { // the database may be down when a collector starts
		if s, err = pgsink.Open(ctx, os.Getenv("EMBER_TEST_DB")); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	c, err := collector.New(collector.Options{URL: os.Getenv("EMBER_TEST_URL"), Fleet: "plant", Group: "g",
		ClientID: os.Getenv(childEnv), Sink: s, BatchMessages: 32, Logger: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := c.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

type child struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startCollector(t *testing.T, id, url, db string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+id, "EMBER_TEST_URL="+url, "EMBER_TEST_DB="+db)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(c.done) }()
	t.Cleanup(func() { c.kill(syscall.SIGTERM) })
	return c
}

func (c *child) kill(sig syscall.Signal) {
	c.cmd.Process.Signal(sig)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
}

// outbox is the store as the uplink sees it, as the daemon adapts it.
type outbox struct{ *store.Store }

func (o outbox) PendingRecords(p, max int) ([]uplink.Record, error) {
	rs, err := o.Store.PendingRecords(p, max)
	out := make([]uplink.Record, len(rs))
	for i, r := range rs {
		out[i] = uplink.Record(r)
	}
	return out, err
}

func (o outbox) SyncBacklog() (uplink.Backlog, error) {
	b, err := o.Store.SyncBacklog()
	return uplink.Backlog(b), err
}

// device is one in-process device: a real store and uplink.
type device struct {
	id     string
	st     *store.Store
	u      *uplink.Uplink
	mu     sync.Mutex
	shared map[uint64]bool
}

func startDevice(t *testing.T, id, url string) *device {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "ember.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	u, err := uplink.New(uplink.Options{URL: url, Fleet: "plant", Device: id, Outbox: outbox{st},
		Settings: st, SettingsNotFound: store.ErrNotFound, Confirm: uplink.ConfirmCollector, ConfirmTimeout: time.Second,
		BackoffMin: 50 * time.Millisecond, BackoffMax: 500 * time.Millisecond, BatchRecords: 16, Window: 4})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { u.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	st.OnAppend(u.Poke)
	return &device{id: id, st: st, u: u, shared: map[uint64]bool{}}
}

func (d *device) write(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		r := store.Record{Kind: []string{store.KindResult, store.KindTelemetry}[i%2], Priority: []int{1, 5, 9}[i%3],
			Data: json.RawMessage(fmt.Sprintf(`{"device":%q,"i":%d}`, d.id, i))}
		if i%17 == 0 {
			r.Classification = store.ClassLocal
		}
		got, err := d.st.Append(context.Background(), r, nil, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if r.Classification != store.ClassLocal {
			d.mu.Lock()
			d.shared[got.Seq] = true
			d.mu.Unlock()
		}
	}
}

func (d *device) settled() bool {
	b := d.u.Status().Backlog
	return b.Records == 0 && b.Unconfirmed == 0
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func countRecords(t *testing.T, db string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		return -1
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM ember_records`).Scan(&n); err != nil {
		return -1
	}
	return n
}

// TestEndToEnd: devices → mosquitto → two collector processes →
// PostgreSQL, through a collector started long after the devices, one
// SIGKILLed mid-stream, a broker restarted without persistence while
// devices hold unconfirmed records, and the database down for a while.
// In the end every shared record is in the database exactly once and
// confirmed on its device.
func TestEndToEnd(t *testing.T) {
	start := time.Now()
	db := testkit.Postgres(t)
	mq := testkit.StartMosquitto(t)
	const nDev, perRound = 6, 150
	devs := make([]*device, nDev)
	for i := range devs {
		devs[i] = startDevice(t, fmt.Sprintf("dev-%d", i), mq.URL())
		devs[i].write(t, perRound)
	}
	// No collector yet: the broker acknowledges and drops.
	waitFor(t, 20*time.Second, "devices to send everything once", func() bool {
		for _, d := range devs {
			if d.u.Status().Backlog.Records > 0 {
				return false
			}
		}
		return true
	})

	// Collectors arrive long after the devices; one is killed mid-stream.
	c1 := startCollector(t, "c1", mq.URL(), db)
	startCollector(t, "c2", mq.URL(), db)
	for _, d := range devs {
		d.write(t, perRound)
	}
	waitFor(t, 30*time.Second, "records in the database", func() bool { return countRecords(t, db) > 200 })
	c1.kill(syscall.SIGKILL)
	startCollector(t, "c3", mq.URL(), db)

	// The broker restarts without persistence with records in flight.
	for _, d := range devs {
		d.write(t, perRound)
	}
	mq.Restart(t)

	// The database goes away for a while: collectors stop confirming,
	// devices keep their records.
	testkit.PostgresTestCluster().Stop()
	for _, d := range devs {
		d.write(t, perRound)
	}
	time.Sleep(3 * time.Second)
	for _, d := range devs {
		if d.u.Status().Backlog.Confirmed == 0 && d.u.Status().Backlog.Unconfirmed == 0 && d.u.Status().Backlog.Records == 0 {
			t.Fatalf("%s holds nothing while the database is down", d.id)
		}
	}
	if err := testkit.PostgresTestCluster().Start(); err != nil {
		t.Fatal(err)
	}

	waitFor(t, 60*time.Second, "every record confirmed on every device", func() bool {
		for _, d := range devs {
			if !d.settled() {
				return false
			}
		}
		return true
	})

	ctx := t.Context()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	total, resends := 0, uint64(0)
	for _, d := range devs {
		rows, err := conn.Query(ctx, `SELECT seq FROM ember_records WHERE device_id = $1`, d.id)
		if err != nil {
			t.Fatal(err)
		}
		got := map[uint64]int{}
		for rows.Next() {
			var s int64
			rows.Scan(&s)
			got[uint64(s)]++
		}
		rows.Close()
		for s := range d.shared {
			if got[s] != 1 {
				t.Errorf("%s seq %d is in the database %d times", d.id, s, got[s])
			}
		}
		if len(got) != len(d.shared) {
			t.Errorf("%s: %d records in the database, %d shared on the device", d.id, len(got), len(d.shared))
		}
		total += len(d.shared)
		st := d.u.Status()
		resends += st.Resends
		if st.Backlog.Confirmed != uint64(4*perRound) {
			t.Errorf("%s: %d confirmed, want %d", d.id, st.Backlog.Confirmed, 4*perRound)
		}
	}
	var devRows int
	conn.QueryRow(ctx, `SELECT count(*) FROM ember_devices`).Scan(&devRows)
	if devRows != nDev {
		t.Errorf("%d devices in ember_devices, want %d", devRows, nDev)
	}
	t.Logf("%d records from %d devices, each once; %d resends; %v", total, nDev, resends, time.Since(start).Round(time.Millisecond))
}
