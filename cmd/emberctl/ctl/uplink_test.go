package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/ember-edge/ember/internal/testkit"
	"github.com/ember-edge/ember/sync/uplink"
)

// lockedWriter is a buffer a command writes while the test reads it.
type lockedWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// runUplinkCtl runs emberctl in-process with ctx as the interrupt, the
// uplink command registered whether or not root.go registers it yet.
func runUplinkCtl(ctx context.Context, stderr *lockedWriter, args ...string) int {
	var out bytes.Buffer
	a := &app{ctx: ctx, stdin: strings.NewReader(""), stdout: &out, stderr: stderr}
	root := a.rootCommand()
	if c, _, err := root.Find([]string{"uplink"}); err != nil || c == root {
		root.AddCommand(a.uplinkCommand())
	}
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		stderr.Write([]byte("emberctl: " + a.explain(err) + "\n"))
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

func TestUplinkConsumeUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"uplink", "consume", "--fleet", "f", "--out", "x"}, "--url is required"},
		{[]string{"uplink", "consume", "--url", "tcp://h:1883", "--out", "x"}, "--fleet is required"},
		{[]string{"uplink", "consume", "--url", "tcp://h:1883", "--fleet", "f"}, "--out FILE is required"},
		{[]string{"uplink", "consume", "--url", "tcp://h:1883", "--fleet", "f", "--out", "x", "--tls-cert", "c"}, "go together"},
	} {
		var errb lockedWriter
		if code := runUplinkCtl(context.Background(), &errb, c.args...); code != 2 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, errb.String(), c.want)
		}
	}
	// --ca here is the broker's CA, not emberd's: a missing file says so.
	var errb lockedWriter
	code := runUplinkCtl(context.Background(), &errb, "uplink", "consume", "--url", "ssl://h:8883", "--fleet", "f",
		"--out", filepath.Join(t.TempDir(), "o"), "--ca", "/nonexistent/ca.pem")
	if code != 1 || !strings.Contains(errb.String(), "--ca") {
		t.Errorf("missing --ca file: exit %d, %q", code, errb.String())
	}
}

// TestUplinkConsume runs `emberctl uplink consume` against a real
// mosquitto, publishes a device's batch (twice, as a device resending
// after a dropped link does), interrupts it and reads the file.
func TestUplinkConsume(t *testing.T) {
	mq := testkit.StartMosquitto(t)
	out := filepath.Join(t.TempDir(), "records.jsonl")
	ctx, cancel := context.WithCancel(context.Background())
	var errb lockedWriter
	done := make(chan int, 1)
	go func() {
		done <- runUplinkCtl(ctx, &errb, "uplink", "consume", "--url", mq.URL(), "--fleet", "plant", "--out", out,
			"--client-id", "ctl-test", "--progress", "50ms")
	}()

	dev := paho.NewClient(paho.NewClientOptions().AddBroker(mq.URL()).SetClientID("dev-1"))
	if tok := dev.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer dev.Disconnect(0)
	payload, err := uplink.EncodeEnvelope(uplink.Envelope{DeviceID: "dev-1", Fleet: "plant", OutboxID: "o1", Kind: uplink.KindResult,
		SentAt: time.Now(), Records: []uplink.EnvelopeRecord{
			{Seq: 1, Kind: uplink.KindResult, Priority: 9, CreatedAt: time.Now(), Data: json.RawMessage(`{"alarm":"low pressure"}`)},
			{Seq: 2, Kind: uplink.KindResult, Priority: 9, CreatedAt: time.Now(), Data: json.RawMessage(`{"alarm":"ok"}`)},
		}})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(errb.String(), "2 new records") {
		if time.Now().After(deadline) {
			t.Fatalf("no progress line; stderr:\n%s", errb.String())
		}
		dev.Publish("fleet/v1/plant/dev-1/results", 1, false, payload).WaitTimeout(5 * time.Second)
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, errb.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("consume did not stop when interrupted")
	}
	if s := errb.String(); !strings.Contains(s, "consumed 2 new records (2 in "+out+" from 1 devices)") {
		t.Errorf("summary missing:\n%s", s)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2 (the resent batch de-duplicated):\n%s", len(lines), data)
	}
	var l struct {
		DeviceID string          `json:"device_id"`
		Seq      uint64          `json:"seq"`
		Kind     string          `json:"kind"`
		Data     json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &l); err != nil || l.DeviceID != "dev-1" || l.Seq != 1 || l.Kind != "result" ||
		string(l.Data) != `{"alarm":"low pressure"}` {
		t.Errorf("line %s (%v)", lines[0], err)
	}
}
