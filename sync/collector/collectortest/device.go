package collectortest

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/sync/uplink"
)

// Outbox adapts *store.Store to the uplink's Outbox and Confirmer, as
// the daemon does, and calls OnConfirm (when set) each time a class's
// confirmed cursor moves: the moment a device learns its records are
// stored in the fleet.
type Outbox struct {
	*store.Store
	OnConfirm func(priority int, through uint64, at time.Time)
}

// PendingRecords converts the store's records.
func (o Outbox) PendingRecords(p, max int) ([]uplink.Record, error) {
	rs, err := o.Store.PendingRecords(p, max)
	out := make([]uplink.Record, len(rs))
	for i, r := range rs {
		out[i] = uplink.Record(r)
	}
	return out, err
}

// SyncBacklog converts the store's backlog.
func (o Outbox) SyncBacklog() (uplink.Backlog, error) {
	b, err := o.Store.SyncBacklog()
	return uplink.Backlog(b), err
}

// MarkConfirmed moves the confirmed cursor and reports where it is.
func (o Outbox) MarkConfirmed(p int, seq uint64) (uint64, error) {
	at, err := o.Store.MarkConfirmed(p, seq)
	if err == nil && o.OnConfirm != nil {
		o.OnConfirm(p, at, time.Now())
	}
	return at, err
}

// Device is one in-process device: a store of its own and an uplink
// that confirms through the collector.
type Device struct {
	ID     string
	Store  *store.Store
	Uplink *uplink.Uplink

	mu     sync.Mutex
	shared []uint64 // the shared records appended, by seq
	cancel context.CancelFunc
	done   chan struct{}
	closed bool
}

// NewDevice opens a store in dir and makes an uplink for it from o,
// whose Device, Outbox, Settings and Confirm it sets. onConfirm may be
// nil.
func NewDevice(dir, id string, o uplink.Options, onConfirm func(int, uint64, time.Time)) (*Device, error) {
	st, err := store.Open(filepath.Join(dir, "ember.db"), store.Options{})
	if err != nil {
		return nil, err
	}
	o.Device = id
	o.Outbox = Outbox{Store: st, OnConfirm: onConfirm}
	o.Settings, o.SettingsNotFound = st, store.ErrNotFound
	o.Confirm = uplink.ConfirmCollector
	u, err := uplink.New(o)
	if err != nil {
		st.Close()
		return nil, err
	}
	st.OnAppend(u.Poke)
	return &Device{ID: id, Store: st, Uplink: u}, nil
}

// Start runs the uplink until Stop.
func (d *Device) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel, d.done = cancel, make(chan struct{})
	go func() { d.Uplink.Run(ctx); close(d.done) }()
}

// Stop ends the uplink (if started) and closes the store; a second
// Stop does nothing.
func (d *Device) Stop() error {
	if d.cancel != nil {
		d.cancel()
		<-d.done
		d.cancel = nil
	}
	if d.closed {
		return nil
	}
	d.closed = true
	return d.Store.Close()
}

// Record is what Append writes: record i of a device.
type Record func(i int) store.Record

// Mixed is a Record of the kinds, priorities and classifications a real
// outbox holds: results and telemetry in runs, three priority classes,
// every 17th record local (it must never reach the database).
func Mixed(device string) Record {
	return func(i int) store.Record {
		r := store.Record{Kind: []string{store.KindResult, store.KindTelemetry}[i/4%2], Priority: []int{1, 5, 9}[i/8%3],
			DeviceID: device, Pipeline: "sim", Data: json.RawMessage(fmt.Sprintf(`{"device":%q,"i":%d,"value":%d.5}`, device, i, i%1000))}
		if i%17 == 16 {
			r.Classification = store.ClassLocal
		}
		return r
	}
}

// Append appends n records (rec(first) … rec(first+n-1)) from up to
// workers goroutines, so that group commits carry many, and remembers
// the shared ones.
func (d *Device) Append(n, first, workers int, rec Record) error {
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := first + w; i < first+n; i += workers {
				if _, err := d.AppendOne(rec(i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// AppendOne appends one record and remembers it when shared.
func (d *Device) AppendOne(r store.Record) (store.Record, error) {
	got, err := d.Store.Append(context.Background(), r, nil, time.Now())
	if err != nil {
		return got, err
	}
	if got.Classification != store.ClassLocal {
		d.mu.Lock()
		d.shared = append(d.shared, got.Seq)
		d.mu.Unlock()
	}
	return got, nil
}

// Shared returns the seqs of the shared records appended, in order.
func (d *Device) Shared() []uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := slices.Clone(d.shared)
	slices.Sort(s)
	return s
}

// Settled reports whether every record is sent and confirmed.
func (d *Device) Settled() bool {
	b, err := d.Store.SyncBacklog()
	return err == nil && b.Records == 0 && b.Unconfirmed == 0
}
