package pgsink_test

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/ember-edge/ember/internal/testkit"
	"github.com/ember-edge/ember/sync/collector"
	"github.com/ember-edge/ember/sync/collector/pgsink"
	"github.com/ember-edge/ember/sync/uplink"
)

func TestMain(m *testing.M) { os.Exit(testkit.RunMain(m)) }

func delivery(device, kind string, prio int, seqs ...uint64) collector.Delivery {
	env := &uplink.Envelope{Format: 1, DeviceID: device, Fleet: "plant", OutboxID: "0123456789abcdef", Kind: kind,
		After: seqs[0] - 1, Through: seqs[len(seqs)-1]}
	for _, s := range seqs {
		env.Records = append(env.Records, uplink.EnvelopeRecord{Seq: s, Kind: kind, Priority: prio,
			CreatedAt: time.Unix(int64(s), 0).UTC(), SHA256: "00", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, s))})
	}
	return collector.Delivery{Topic: "t", Envelope: env, ReceivedAt: time.Now()}
}

// TestStoreOnce: a batch stored twice, and overlapping batches, leave
// each record once; the devices table follows.
func TestStoreOnce(t *testing.T) {
	ctx := t.Context()
	s, err := pgsink.Open(ctx, testkit.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := collector.Batch{Deliveries: []collector.Delivery{delivery("d1", "result", 5, 1, 2, 3), delivery("d2", "telemetry", 1, 1, 2)},
		Reports: []collector.Report{{DeviceID: "d1", Payload: json.RawMessage(`{"format":1,"fleet":"plant","phase":"active","active_version":7}`), ReceivedAt: time.Now()}}}
	for range 2 {
		if err := s.Store(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Store(ctx, collector.Batch{Deliveries: []collector.Delivery{delivery("d1", "result", 5, 3, 4)}}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM ember_records`).Scan(&n); err != nil || n != 6 {
		t.Fatalf("%d records (%v), want 6", n, err)
	}
	var version int64
	var phase string
	var tel []byte
	if err := s.Pool().QueryRow(ctx, `SELECT active_version, update_phase FROM ember_devices WHERE device_id = 'd1'`).Scan(&version, &phase); err != nil || version != 7 || phase != "active" {
		t.Fatalf("d1: version %d phase %q (%v)", version, phase, err)
	}
	if err := s.Pool().QueryRow(ctx, `SELECT last_telemetry FROM ember_devices WHERE device_id = 'd2'`).Scan(&tel); err != nil || string(tel) != `{"n": 2}` {
		t.Fatalf("d2 telemetry %s (%v)", tel, err)
	}
	// A second Open migrates nothing more.
	s2, err := pgsink.Open(ctx, testkit.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
}

// TestFleetViews: what `emberctl fleet devices` and `fleet records` read.
func TestFleetViews(t *testing.T) {
	ctx := t.Context()
	s, err := pgsink.Open(ctx, testkit.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tel := delivery("d2", "telemetry", 1, 9)
	tel.Envelope.Records[0].Data = json.RawMessage(`{"sync":{"Records":12,"Unconfirmed":3}}`)
	b := collector.Batch{Deliveries: []collector.Delivery{delivery("d1", "result", 5, 1, 2, 3), delivery("d1", "deadletter", 5, 4), tel},
		Reports: []collector.Report{{DeviceID: "d1", Payload: json.RawMessage(`{"format":1,"fleet":"plant","phase":"active","active_version":7}`), ReceivedAt: time.Now()}}}
	if err := s.Store(ctx, b); err != nil {
		t.Fatal(err)
	}
	ds, err := s.Devices(ctx, "plant")
	if err != nil || len(ds) != 2 {
		t.Fatalf("devices %+v (%v)", ds, err)
	}
	byID := map[string]pgsink.Device{}
	for _, d := range ds {
		byID[d.ID] = d
	}
	if d := byID["d1"]; d.Records != 4 || d.ActiveVersion == nil || *d.ActiveVersion != 7 || d.UpdatePhase != "active" || d.Backlog != nil {
		t.Errorf("d1 %+v", d)
	}
	if d := byID["d2"]; d.Backlog == nil || *d.Backlog != 12 || d.Unconfirmed == nil || *d.Unconfirmed != 3 {
		t.Errorf("d2 %+v: want the backlog its telemetry reported", d)
	}
	if ds, _ := s.Devices(ctx, "other"); len(ds) != 0 {
		t.Errorf("another fleet's devices: %+v", ds)
	}
	rs, err := s.Records(ctx, pgsink.RecordQuery{Device: "d1", Since: time.Unix(2, 0), Kind: "result"})
	if err != nil || len(rs) != 2 || rs[0].Seq != 2 || rs[1].Seq != 3 || string(rs[1].Data) != `{"n": 3}` {
		t.Fatalf("records %+v (%v), want results 2 and 3", rs, err)
	}
	if _, err := s.Records(ctx, pgsink.RecordQuery{}); err == nil {
		t.Error("a query without a device was accepted")
	}
}
