package ctl

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ember-edge/ember/internal/testkit"
	"github.com/ember-edge/ember/sync/collector"
	"github.com/ember-edge/ember/sync/collector/pgsink"
	"github.com/ember-edge/ember/sync/uplink"
)

func TestMain(m *testing.M) { os.Exit(testkit.RunMain(m)) }

// An operator reads what the collectors stored: the devices with their
// backlog, version and update phase, and one device's records.
func TestFleetDevicesAndRecordsReadTheFleetDatabase(t *testing.T) {
	dsn := testkit.Postgres(t)
	s, err := pgsink.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	env := &uplink.Envelope{Format: 1, DeviceID: "press-07", Fleet: "plant", OutboxID: "0123456789abcdef", Kind: "result", After: 0, Through: 2}
	for seq := uint64(1); seq <= 2; seq++ {
		env.Records = append(env.Records, uplink.EnvelopeRecord{Seq: seq, Kind: "result", Priority: 5, Pipeline: "alarms",
			CreatedAt: time.Now().Add(-time.Duration(3-seq) * time.Hour), SHA256: "00", Data: json.RawMessage(`{"output":"ok"}`)})
	}
	err = s.Store(t.Context(), collector.Batch{Deliveries: []collector.Delivery{{Topic: "t", Envelope: env, ReceivedAt: time.Now()}},
		Reports: []collector.Report{{DeviceID: "press-07", Payload: json.RawMessage(`{"format":1,"fleet":"plant","phase":"active","active_version":3}`), ReceivedAt: time.Now()}}})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}

	out, errOut, code := runCtl(t, "-o", "json", "fleet", "devices", "--db", dsn)
	var devs struct{ Devices []pgsink.Device }
	if code != 0 || json.Unmarshal([]byte(out), &devs) != nil || len(devs.Devices) != 1 ||
		devs.Devices[0].ID != "press-07" || *devs.Devices[0].ActiveVersion != 3 || devs.Devices[0].UpdatePhase != "active" {
		t.Fatalf("fleet devices: %d %s %s", code, out, errOut)
	}
	out, errOut, code = runCtl(t, "-o", "json", "fleet", "records", "--db", dsn, "--device", "press-07", "--since", "90m", "--kind", "result")
	var recs struct{ Records []pgsink.StoredRecord }
	if code != 0 || json.Unmarshal([]byte(out), &recs) != nil || len(recs.Records) != 1 || recs.Records[0].Seq != 2 {
		t.Fatalf("fleet records --since 90m: %d %s %s", code, out, errOut)
	}
	if out, _, code := runCtl(t, "fleet", "devices", "--db", dsn); code != 0 || !strings.Contains(out, "press-07") || !strings.Contains(out, "active") {
		t.Fatalf("fleet devices for people: %s", out)
	}
	if _, errOut, code := runCtl(t, "fleet", "records", "--db", dsn, "--device", "press-07", "--since", "yesterday"); code != 2 || !strings.Contains(errOut, "--since") {
		t.Fatalf("a bad --since: %d %s", code, errOut)
	}
}
