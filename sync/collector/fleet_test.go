package collector_test

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ember-edge/ember/internal/testkit"
	"github.com/ember-edge/ember/sync/collector/collectortest"
)

// TestFleetThroughFlakyLinks: 50 devices (EMBER_SIM_DEVICES), each a
// real store with a backlog of 100 records and a real uplink, connect
// through a proxy that breaks their links at random for 5 s, into
// mosquitto and two collectors of one shared subscription, into
// PostgreSQL. Within 60 s every device has every record confirmed, and
// every shared record is in the table once; no local record is.
func TestFleetThroughFlakyLinks(t *testing.T) {
	devices := 50
	if v, err := strconv.Atoi(os.Getenv("EMBER_SIM_DEVICES")); err == nil && v > 0 {
		devices = v
	}
	mq := testkit.StartMosquitto(t)
	res, err := collectortest.RunFleet(t, collectortest.FleetOptions{Devices: devices, Records: 100, Collectors: 2,
		Broker: mq.Addr, DB: testkit.Postgres(t), Dir: t.TempDir(), FaultFor: 5 * time.Second, Timeout: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d devices, %d shared records: all confirmed after %v (setup %v); %d faults over %d connections, %d reconnects; "+
		"%d records sent (%.2fx), %d resends, %d stored by the collectors (%d duplicates dropped by the key)",
		res.Devices, res.Shared, res.Drain.Round(time.Millisecond), res.Setup.Round(time.Millisecond), res.Faults, res.Connections,
		res.Reconnects, res.Sent, float64(res.Sent)/float64(max(res.Shared, 1)), res.Resends, res.Stored, int(res.Stored)-res.Rows)
	if res.Unsettled > 0 {
		t.Errorf("%d devices still hold unconfirmed records after %v", res.Unsettled, res.Drain.Round(time.Millisecond))
	}
	if res.Lost != 0 || res.Duplicates != 0 || res.Extra != 0 {
		t.Errorf("lost %d, duplicated %d, %d rows that are no shared record", res.Lost, res.Duplicates, res.Extra)
	}
	if res.Faults == 0 {
		t.Error("the proxy injected no fault")
	}
}
