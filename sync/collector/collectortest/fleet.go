package collectortest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ember-edge/ember/internal/testkit"
	"github.com/ember-edge/ember/sync/uplink"
)

// FleetOptions shape a fleet simulation.
type FleetOptions struct {
	// Devices and Records: how many devices, each with a backlog of how
	// many records (Mixed: every 17th is local and must not arrive).
	Devices, Records int
	// Collectors in one shared-subscription group (default 2).
	Collectors int
	// Broker is the broker's host:port (devices reach it through a
	// FaultProxy); DB the database (pgsink migrates it).
	Broker, DB string
	// Dir holds one directory per device's store.
	Dir string
	// FaultFor is how long the links break (default 10s); FaultMean the
	// mean bytes a device sends between faults (default 8 KiB; replies
	// break 25 times as often per byte, they are small).
	FaultFor  time.Duration
	FaultMean int
	// Stagger spreads the devices' first connections over this long
	// (default 1s), as a fleet coming back does.
	Stagger time.Duration
	// Timeout bounds the drain (default 5m).
	Timeout time.Duration
}

// FleetResult is what a simulation measured.
type FleetResult struct {
	Devices, Shared int // devices, shared records written
	Setup, Drain    time.Duration
	// Rows is the records in the table; Lost the shared records not
	// there; Extra rows that are no shared record (local records, say);
	// Duplicates rows beyond one per key (the primary key makes it 0).
	Rows, Lost, Extra, Duplicates int
	Unsettled                     int // devices with records not confirmed when the drain ended
	// Sent is the records published (resends included); Resends the
	// rewinds after a confirm timeout; Stored the records the collectors
	// stored (duplicates included, dropped by ON CONFLICT).
	Sent, Resends, Stored, Reconnects, Messages uint64
	Faults, Connections                         int64
}

// RunFleet runs the simulation: devices with their backlogs already
// written connect, staggered, through one FaultProxy to the broker;
// Collectors collectors store into DB; it waits until every device has
// every record confirmed (or Timeout), then counts the table.
func RunFleet(tb testing.TB, o FleetOptions) (FleetResult, error) {
	if o.Collectors <= 0 {
		o.Collectors = 2
	}
	if o.FaultFor <= 0 {
		o.FaultFor = 10 * time.Second
	}
	if o.FaultMean <= 0 {
		o.FaultMean = 8 << 10
	}
	if o.Stagger <= 0 {
		o.Stagger = time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	res := FleetResult{Devices: o.Devices}
	const fleet = "sim"
	cs, err := StartCollectors("tcp://"+o.Broker, fleet, "sim", o.DB, o.Collectors)
	if err != nil {
		return res, err
	}
	defer cs.Stop()
	proxy := testkit.StartFaultProxy(tb, o.Broker, testkit.FaultOptions{Seed: 1, Up: o.FaultMean, Down: o.FaultMean / 25})
	defer proxy.Close()

	// Set up: every device's store and backlog, 16 at a time.
	setup := time.Now()
	devs := make([]*Device, o.Devices)
	defer func() {
		for _, d := range devs {
			if d != nil {
				d.Stop()
			}
		}
	}()
	uo := uplink.Options{URL: proxy.URL(), Fleet: fleet, BackoffMin: 50 * time.Millisecond, BackoffMax: time.Second,
		KeepAlive: 5 * time.Second, AckTimeout: 10 * time.Second, ConnectTimeout: 5 * time.Second,
		ConfirmTimeout: 2 * time.Second}
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	errs := make([]error, o.Devices)
	for i := range devs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			id := fmt.Sprintf("sim-%04d", i)
			d, err := NewDevice(filepath.Join(o.Dir, id), id, uo, nil)
			if err != nil {
				errs[i] = err
				return
			}
			devs[i] = d
			errs[i] = d.Append(o.Records, 0, 8, Mixed(id))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	res.Setup = time.Since(setup)

	// Drain: faults strike for FaultFor from the first connection.
	proxy.FaultFor(o.FaultFor)
	start := time.Now()
	for i, d := range devs {
		d.Start()
		if wait := time.Duration(i+1) * o.Stagger / time.Duration(len(devs)); time.Since(start) < wait {
			time.Sleep(wait - time.Since(start))
		}
	}
	// A settled device stays settled (nothing more is appended): look
	// again only at the others, so that polling a thousand stores does
	// not take the CPU the drain needs.
	deadline := start.Add(o.Timeout)
	pending := slices.Clone(devs)
	for {
		pending = slices.DeleteFunc(pending, (*Device).Settled)
		res.Unsettled = len(pending)
		if res.Unsettled == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	res.Drain = time.Since(start)
	for _, d := range devs {
		st := d.Uplink.Status()
		res.Sent += st.RecordsSent
		res.Resends += st.Resends
		res.Reconnects += st.Reconnects
		d.Stop()
	}
	cst := cs.Stats()
	res.Stored, res.Messages = cst.Records, cst.Messages
	res.Faults, res.Connections = proxy.Faults(), proxy.Accepted()

	// Count the table against what the devices wrote.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, o.DB)
	if err != nil {
		return res, err
	}
	defer conn.Close(ctx)
	type key struct {
		device string
		seq    uint64
	}
	have := map[key]int{}
	rows, err := conn.Query(ctx, `SELECT device_id, seq FROM ember_records`)
	if err != nil {
		return res, err
	}
	for rows.Next() {
		var dev string
		var seq int64
		if err := rows.Scan(&dev, &seq); err != nil {
			return res, err
		}
		have[key{dev, uint64(seq)}]++
		res.Rows++
	}
	if err := rows.Err(); err != nil {
		return res, err
	}
	matched := 0
	for _, d := range devs {
		for _, s := range d.Shared() {
			res.Shared++
			switch n := have[key{d.ID, s}]; {
			case n == 0:
				res.Lost++
			default:
				matched++
				res.Duplicates += n - 1
			}
		}
	}
	res.Extra = res.Rows - matched - res.Duplicates
	return res, nil
}
