package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/ember-edge/ember/daemon/store"
)

// fullDiskPipeline keeps every payload in its job (no fields: the whole
// message is the input), so large messages fill the disk quickly. Its
// priority is the highest, which the disk governor never refuses on a
// disk low on space: what is measured is the store at a full disk.
const fullDiskPipeline = `pipelines:
  - name: bulk
    match: plant/bulk/+/reading
    decode: json
    id: id
    prompt: "Reading {{.id}}"
    max_tokens: 2
    priority: 9
    params: {temperature: 0}
`

// TestFullDiskIsBackpressure runs emberd with its state dir on a small
// tmpfs (the model lives elsewhere) and publishes large QoS 1 messages
// until the disk is full. A full disk must be backpressure, not a crash
// or corruption: emberd says so in its log, keeps serving gRPC, refuses
// (does not acknowledge) what it cannot store — an MQTT 5 publisher gets
// PUBACK 0x97 quota exceeded, an MQTT 3.1.1 one is disconnected — takes
// messages again once there is room, and leaves a database that opens,
// passes bbolt's check and holds a job for every message it acknowledged.
func TestFullDiskIsBackpressure(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("TestFullDiskIsBackpressure mounts a small tmpfs as emberd's state dir and needs root (CI runs the tests as root)")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "ember-e2e-full", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs on %s: %v\n%s", mnt, err, out)
	}
	// Registered before emberd's cleanup, so it runs after emberd is gone.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", mnt, err, out)
		}
	})
	// Ballast takes some of the room; removing it later frees the disk.
	ballast := filepath.Join(mnt, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 2<<20), 0o644); err != nil {
		t.Fatal(err)
	}

	d := newEmberd(t, daemonConfig{StateDir: filepath.Join(mnt, "state"), Extra: fullDiskPipeline})
	rng := rand.New(rand.NewPCG(1, 2))
	big := func(id string) []byte {
		blob := make([]byte, 48<<10)
		for i := range blob {
			blob[i] = byte('a' + rng.IntN(26))
		}
		return fmt.Appendf(nil, `{"id":%q,"blob":%q}`, id, blob)
	}

	// Fill the disk from an MQTT 3.1.1 client, one message at a time.
	var acked []string
	plc := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + d.MQTTAddr).SetClientID("plc-bulk").
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
	if tok := plc.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	var refused error
	for i := range 1000 { // 8MiB holds far fewer than 1000 messages of 48KiB
		id := fmt.Sprintf("b-%04d", i)
		tok := plc.Publish("plant/bulk/press-1/reading", 1, false, big(id))
		if !tok.WaitTimeout(20 * time.Second) {
			refused = errors.New("no PUBACK within 20s")
			break
		}
		if tok.Error() != nil {
			refused = tok.Error()
			break
		}
		acked = append(acked, id)
	}
	plc.Disconnect(0)
	if refused == nil {
		t.Fatalf("%d messages of 48KiB acknowledged on an 8MiB disk", len(acked))
	}
	t.Logf("%d messages acknowledged, then: %v", len(acked), refused)
	if len(acked) < 10 {
		t.Errorf("only %d messages acknowledged before the disk was full", len(acked))
	}
	// The log reaches the test through a pipe: give it a moment.
	for wait := time.Now().Add(10 * time.Second); !strings.Contains(d.log.String(), "disk full"); {
		if time.Now().After(wait) {
			t.Errorf("emberd's log does not say the disk is full")
			break
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A full disk is not a steady state: a failed commit frees what it
	// took, and a later, smaller one may fit. So each kind of publisher
	// keeps sending until it is refused; what is acknowledged meanwhile
	// must be stored like the rest.
	var refusedIDs []string
	t.Run("MQTT 5 publisher gets quota exceeded", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		c := mqtt5Client(t, ctx, d.MQTTAddr, "plc-bulk-5", nil)
		for i := range 50 {
			id := fmt.Sprintf("v5-%04d", i)
			resp, err := c.Publish(ctx, &paho5.Publish{Topic: "plant/bulk/press-5/reading", QoS: 1, Payload: big(id)})
			switch {
			case resp != nil && resp.ReasonCode == 0x97:
				refusedIDs = append(refusedIDs, id)
				return
			case err == nil && resp.ReasonCode == 0:
				acked = append(acked, id)
			default:
				t.Fatalf("PUBACK %+v (%v), want reason code 0x97 quota exceeded", resp, err)
			}
		}
		t.Fatal("50 more messages acknowledged on a full disk")
	})
	t.Run("MQTT 3.1.1 publisher is disconnected, not acknowledged", func(t *testing.T) {
		for i := range 50 {
			id := fmt.Sprintf("v3-%04d", i)
			switch got := publishRaw311(t, d.MQTTAddr, "plc-bulk-3", "plant/bulk/press-3/reading", big(id)); got {
			case "disconnected":
				refusedIDs = append(refusedIDs, id)
				return
			case "puback":
				acked = append(acked, id)
			default:
				t.Fatalf("got %s, want the connection closed without a PUBACK", got)
			}
		}
		t.Fatal("50 more messages acknowledged on a full disk")
	})
	t.Run("emberd keeps serving gRPC", func(t *testing.T) {
		if !d.running() {
			t.Fatal("emberd is not running")
		}
		out, stderr, err := d.ctl("status")
		if err != nil || !strings.Contains(out, deviceID) {
			t.Fatalf("emberctl status: %v\n%s%s", err, out, stderr)
		}
	})

	// Stopped on a full disk, the database opens in place, passes bbolt's
	// check and holds a job for every acknowledged message.
	d.stop()
	checkFullDiskDB(t, d.dbPath(), acked, refusedIDs)

	// Jobs whose results did not fit are left running; at start emberd
	// requeues them, which needs room too.
	t.Run("emberd starts on the full disk and takes messages once there is room", func(t *testing.T) {
		if err := d.tryStart(); err != nil {
			t.Fatalf("emberd does not start again on the full disk: %v", err)
		}
		if err := os.Remove(ballast); err != nil {
			t.Fatal(err)
		}
		c := mqttClient(t, d.MQTTAddr, "plc-bulk-again")
		id := "after-0001"
		tok := c.Publish("plant/bulk/press-1/reading", 1, false, big(id))
		if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
			t.Fatalf("with room again, no PUBACK: %v", tok.Error())
		}
		acked = append(acked, id)
		d.stop()
		checkFullDiskDB(t, d.dbPath(), acked, refusedIDs)
	})
}

// checkFullDiskDB opens a stopped emberd's database in place, checks it,
// and checks that every acknowledged message has a job and no refused
// one has.
func checkFullDiskDB(t *testing.T, path string, acked, refused []string) {
	t.Helper()
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatalf("open the database on the full disk: %v", err)
	}
	defer st.Close()
	if err := st.Check(); err != nil {
		t.Fatalf("database check: %v", err)
	}
	jobs, running := map[string]bool{}, 0
	for before := uint64(0); ; {
		js, err := st.Jobs(store.JobFilter{BeforeID: before, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(js) == 0 {
			break
		}
		for _, j := range js {
			jobs[decodeJobRequest(t, j).RequestID] = true
			if j.State == store.JobRunning {
				running++
			}
		}
		before = js[len(js)-1].ID
	}
	t.Logf("%d jobs in the database, %d left running (interrupted, or their results did not fit)", len(jobs), running)
	for _, id := range acked {
		if !jobs[id] {
			t.Errorf("message %s was acknowledged but has no job", id)
		}
	}
	for _, id := range refused {
		if jobs[id] {
			t.Errorf("message %s was refused but has a job", id)
		}
	}
}

// publishRaw311 speaks MQTT 3.1.1 on a bare connection: CONNECT, then one
// QoS 1 PUBLISH, and reports what came back: "puback", "disconnected",
// or "nothing" when the connection stayed open without an answer.
func publishRaw311(t *testing.T, addr, id, topic string, payload []byte) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	cp := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
	cp.ProtocolName, cp.ProtocolVersion, cp.CleanSession, cp.ClientIdentifier, cp.Keepalive = "MQTT", 4, true, id, 30
	if err := cp.Write(conn); err != nil {
		t.Fatal(err)
	}
	ack, err := packets.ReadPacket(conn)
	if err != nil {
		t.Fatalf("CONNACK: %v", err)
	}
	if ca, ok := ack.(*packets.ConnackPacket); !ok || ca.ReturnCode != 0 {
		t.Fatalf("CONNACK: %v", ack)
	}
	pp := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	pp.TopicName, pp.Qos, pp.MessageID, pp.Payload = topic, 1, 1, payload
	if err := pp.Write(conn); err != nil {
		t.Fatal(err)
	}
	for {
		p, err := packets.ReadPacket(conn)
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err):
			return "disconnected"
		case err != nil:
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return "nothing"
			}
			t.Fatalf("read: %v", err)
		}
		if _, ok := p.(*packets.PubackPacket); ok {
			return "puback"
		}
	}
}

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }
