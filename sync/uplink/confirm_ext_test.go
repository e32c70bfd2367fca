package uplink_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/internal/testkit"
	"github.com/ember-edge/ember/sync/uplink"
)

// acker is a minimal collector: it records every record it receives and
// acknowledges each envelope's span on the device's ack topic.
type acker struct {
	mu   sync.Mutex
	seen map[uint64]int
	cli  paho.Client
}

func startAcker(t *testing.T, url, fleet string) *acker {
	t.Helper()
	a := &acker{seen: map[uint64]int{}}
	a.cli = paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("acker-%d", time.Now().UnixNano())))
	if tok := a.cli.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("acker connect: %v", tok.Error())
	}
	filters := map[string]byte{}
	for _, k := range []string{"results", "telemetry", "deadletters", "audit"} {
		filters["fleet/v1/"+fleet+"/+/"+k] = 1
	}
	tok := a.cli.SubscribeMultiple(filters, func(c paho.Client, m paho.Message) {
		env, err := uplink.DecodeEnvelope(m.Payload(), 0)
		if err != nil {
			t.Errorf("acker: %v", err)
			return
		}
		a.mu.Lock()
		for _, r := range env.Records {
			a.seen[r.Seq]++
		}
		a.mu.Unlock()
		ack, _ := uplink.EncodeAck(uplink.Ack{DeviceID: env.DeviceID, OutboxID: env.OutboxID,
			Ranges: []uplink.AckRange{{Priority: env.Records[0].Priority, After: env.After, Through: env.Through}}})
		c.Publish("fleet/v1/"+fleet+"/"+env.DeviceID+"/ack", 1, false, ack)
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("acker subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { a.cli.Disconnect(0) })
	return a
}

func (a *acker) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.seen)
}

// confirmRecords appends n records in classes 2 and 7, the last few of
// class 2 local (they never leave, yet end confirmed).
func confirmRecords(t *testing.T, st *store.Store, n int) (shared int) {
	var recs []store.Record
	for i := range n {
		r := store.Record{Kind: kinds[i%2], Priority: 2 + 5*(i%3/2), Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}
		if i >= n-4 && r.Priority == 2 {
			r.Classification = store.ClassLocal
		} else {
			shared++
		}
		recs = append(recs, r)
	}
	for _, r := range recs { // in order, so the local ones are the last of their class
		if _, err := st.Append(t.Context(), r, nil, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	return shared
}

func backlog(t *testing.T, u *uplink.Uplink) uplink.Backlog {
	st := u.Status()
	if st.BacklogError != "" {
		t.Fatal(st.BacklogError)
	}
	return st.Backlog
}

// TestConfirmedDeliveryAcrossBrokerRestart: with no collector the broker
// acknowledges and drops the records; the device keeps them unconfirmed
// (retention cannot prune them), and after the broker restarts without
// persistence and a collector appears, they are sent again and end
// confirmed, local records included.
func TestConfirmedDeliveryAcrossBrokerRestart(t *testing.T) {
	mq := testkit.StartMosquitto(t)
	st := uplink.OpenTestStore(t)
	shared := confirmRecords(t, st, 60)
	u, err := uplink.New(uplink.Options{URL: mq.URL(), Fleet: "plant", Device: "dev-1", Outbox: uplink.StoreOutbox{Store: st},
		Settings: st, SettingsNotFound: store.ErrNotFound, Confirm: uplink.ConfirmCollector, ConfirmTimeout: time.Second,
		BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond, BatchRecords: 8, Logger: logger()})
	if err != nil {
		t.Fatal(err)
	}
	runUplink(t, u)
	waitUntil(t, 15*time.Second, "every record sent", func() bool {
		b := backlog(t, u)
		return b.Records == 0 && b.Unconfirmed > 0
	})
	if b := backlog(t, u); b.Confirmed != 0 || b.Unconfirmed != 60 {
		t.Fatalf("with no collector: %+v", b)
	}
	if n, err := st.PruneSynced(time.Now().Add(time.Hour), 1000); err != nil || n != 0 {
		t.Fatalf("retention pruned %d unconfirmed records (%v)", n, err)
	}

	mq.Restart(t)
	a := startAcker(t, mq.URL(), "plant")
	waitUntil(t, 30*time.Second, "every record confirmed", func() bool {
		b := backlog(t, u)
		return b.Records == 0 && b.Unconfirmed == 0 && b.Confirmed == 60
	})
	if a.count() != shared {
		t.Errorf("collector stored %d records, want %d", a.count(), shared)
	}
	if s := u.Status(); s.Resends == 0 || s.AcksReceived == 0 {
		t.Errorf("resends %d, acks %d", s.Resends, s.AcksReceived)
	}
	if n, err := st.PruneSynced(time.Now().Add(time.Hour), 1000); err != nil || n != 60 {
		t.Fatalf("retention pruned %d confirmed records (%v), want 60", n, err)
	}
}

// TestConfirmBroker: with confirm: broker a PUBACK confirms, as before.
func TestConfirmBroker(t *testing.T) {
	mq := testkit.StartMosquitto(t)
	st := uplink.OpenTestStore(t)
	confirmRecords(t, st, 30)
	u, err := uplink.New(uplink.Options{URL: mq.URL(), Fleet: "plant", Device: "dev-1", Outbox: uplink.StoreOutbox{Store: st},
		Settings: st, SettingsNotFound: store.ErrNotFound, Confirm: uplink.ConfirmBroker, BatchRecords: 8, Logger: logger()})
	if err != nil {
		t.Fatal(err)
	}
	runUplink(t, u)
	waitUntil(t, 15*time.Second, "every record confirmed by PUBACK alone", func() bool {
		b := backlog(t, u)
		return b.Records == 0 && b.Unconfirmed == 0 && b.Confirmed == 30
	})
}
