package mqtt

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	"github.com/mochi-mqtt/server/v2/packets"
)

const floodLimits = `limits: {max_clients: 4, max_sessions: 6, max_inflight: 16, max_queued: 16, max_retained: 10, max_retained_bytes: 32KiB, session_expiry: 1h}`

// persistentConnect encodes an MQTT 5 CONNECT asking for a session kept
// an hour.
func persistentConnect(t *testing.T, id string) []byte {
	t.Helper()
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 5,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Keepalive: 30, ClientIdentifier: id}}
	pk.Properties.SessionExpiryInterval, pk.Properties.SessionExpiryIntervalFlag = 3600, true
	var buf bytes.Buffer
	if err := pk.ConnectEncode(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestConnectionAndSessionFloods: clients past max_clients are refused
// "server busy", and sessions past max_sessions (kept after their
// clients left) "quota exceeded", while a known session may come back.
func TestConnectionAndSessionFloods(t *testing.T) {
	t.Run("connections", func(t *testing.T) {
		tb := startBrokerWith(t, floodLimits, "")
		accepted, busy := 0, 0
		for i := range 20 {
			conn, err := net.Dial("tcp", tb.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			conn.Write(connectPacket(t, 5, fmt.Sprint("c", i), nil, nil))
			ack := make([]byte, 4)
			if _, err := conn.Read(ack); err != nil {
				t.Fatal(err)
			}
			switch ack[3] {
			case 0:
				accepted++
			case packets.ErrServerBusy.Code:
				busy++
			default:
				t.Fatalf("CONNACK code %#x", ack[3])
			}
		}
		if accepted != 4 || busy != 16 {
			t.Fatalf("%d accepted and %d refused busy, want 4 and 16", accepted, busy)
		}
	})
	t.Run("sessions", func(t *testing.T) {
		tb := startBrokerWith(t, floodLimits, "")
		for i := range 6 {
			if got := rawConnect(t, tb.addr, 5, persistentConnect(t, fmt.Sprint("s", i))); got.closed || got.code != 0 {
				t.Fatalf("session %d refused: %+v", i, got)
			}
		}
		time.Sleep(100 * time.Millisecond) // the broker notices the closed connections
		got := rawConnect(t, tb.addr, 5, persistentConnect(t, "s6"))
		if got.code != packets.ErrQuotaExceeded.Code || !strings.Contains(got.reason, "max_sessions") {
			t.Fatalf("a seventh session: %+v, want quota exceeded naming max_sessions", got)
		}
		if got := rawConnect(t, tb.addr, 4, connectPacket(t, 4, "s7", nil, nil)); got.code != 0x03 {
			t.Fatalf("MQTT 3.1.1 past the sessions: %+v, want 0x03 server unavailable", got)
		}
		if got := rawConnect(t, tb.addr, 5, persistentConnect(t, "s3")); got.code != 0 {
			t.Fatalf("a known session coming back: %+v", got)
		}
	})
}

// TestRetainedFlood: retained messages past max_retained or
// max_retained_bytes are refused; clearing one makes room.
func TestRetainedFlood(t *testing.T) {
	tb := startBrokerWith(t, floodLimits, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	status := make(chan string, 1)
	c := login(t, tb.addr, "flooder", "", "", status)
	// emberd's retained status counts; wait until it is there.
	c.Subscribe(ctx, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "ember/v1/d1/status", QoS: 0}}})
	select {
	case <-status:
	case <-ctx.Done():
		t.Fatal("no retained status")
	}
	pub := func(topic string, size int) byte {
		res, err := c.Publish(ctx, &paho5.Publish{Topic: topic, QoS: 1, Retain: true, Payload: bytes.Repeat([]byte("x"), size)})
		if res == nil {
			t.Fatalf("no PUBACK: %v", err)
		}
		return res.ReasonCode
	}
	ok := 0
	for i := range 50 {
		switch code := pub(fmt.Sprint("flood/", i), 1024); code {
		case 0:
			ok++
		case packets.ErrQuotaExceeded.Code:
		default:
			t.Fatalf("PUBACK %#x", code)
		}
	}
	// emberd's own retained status counts too.
	if ok != 9 {
		t.Fatalf("%d retained messages accepted, want 9 beside emberd's status", ok)
	}
	if code := pub("flood/0", 30<<10); code != packets.ErrQuotaExceeded.Code {
		t.Fatalf("replacing one past max_retained_bytes: %#x", code)
	}
	if code := pub("flood/0", 0); code != 0 {
		t.Fatalf("clearing one: %#x", code)
	}
	if code := pub("flood/new", 1024); code != 0 {
		t.Fatalf("after clearing one: %#x", code)
	}
	got := make(chan string, 100)
	late := login(t, tb.addr, "late", "", "", got)
	late.Subscribe(ctx, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "flood/#", QoS: 0}}})
	time.Sleep(300 * time.Millisecond)
	topics := map[string]bool{}
	for len(got) > 0 {
		m := <-got
		topics[strings.Fields(m)[0]] = true
	}
	if len(topics) != 9 || topics["flood/0"] || !topics["flood/new"] {
		t.Fatalf("a new subscriber got retained messages on %v, want flood/1-8 and flood/new", topics)
	}
}

// TestOfflineSessionsStayBounded is the memory attack: sessions
// subscribed to '#' go offline and a publisher floods. Each keeps at most
// max_inflight messages, so the heap stays small.
func TestOfflineSessionsStayBounded(t *testing.T) {
	tb := startBrokerWith(t, floodLimits, "")
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	expiry := uint32(3600)
	for i := range 4 {
		conn, err := net.Dial("tcp", tb.addr)
		if err != nil {
			t.Fatal(err)
		}
		c := paho5.NewClient(paho5.ClientConfig{Conn: conn})
		if ca, err := c.Connect(ctx, &paho5.Connect{ClientID: fmt.Sprint("idle-", i), KeepAlive: 30,
			Properties: &paho5.ConnectProperties{SessionExpiryInterval: &expiry}}); err != nil || ca.ReasonCode != 0 {
			t.Fatalf("connect: %v %+v", err, ca)
		}
		if _, err := c.Subscribe(ctx, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "#", QoS: 1}}}); err != nil {
			t.Fatal(err)
		}
		c.Disconnect(&paho5.Disconnect{})
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before, rssBefore := heap(), rss(t)
	pub := login(t, tb.addr, "flooder", "", "", make(chan string, 1))
	payload := bytes.Repeat([]byte("x"), 4096)
	const n = 4000 // 4 sessions × 4000 × 4KiB = 64MiB if every message were kept
	start := time.Now()
	for i := range n {
		if _, err := pub.Publish(ctx, &paho5.Publish{Topic: "noise/x", QoS: 1, Payload: payload}); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	grown := int64(heap()) - int64(before)
	rssGrown := int64(rss(t)) - int64(rssBefore)
	t.Logf("%d messages in %v; heap grew %d KiB, resident memory %d KiB", n, time.Since(start), grown>>10, rssGrown>>10)
	if grown > 16<<20 {
		t.Fatalf("heap grew %d MiB for offline sessions that may keep 16 messages each", grown>>20)
	}
	// Resident memory, what the kernel charges the process (and systemd's
	// MemoryMax), stays below what keeping the flood would take (64 MiB),
	// even with the race detector's shadow memory and the garbage of 16
	// MiB of messages passing through.
	if rssGrown > 48<<20 {
		t.Fatalf("resident memory grew %d MiB for offline sessions that may keep 16 messages each", rssGrown>>20)
	}
}

// rss is the process's resident set size, from /proc/self/status.
func rss(t *testing.T) uint64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb uint64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}
