package uplink_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/sync/uplink"
)

func logger() *slog.Logger {
	if os.Getenv("EMBER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// runUplink runs u until the returned stop is called (or the test ends).
func runUplink(t testing.TB, u *uplink.Uplink) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(15 * time.Second):
				var stacks strings.Builder
				pprof.Lookup("goroutine").WriteTo(&stacks, 1)
				t.Errorf("Run did not return after its context ended; goroutines:\n%s", stacks.String())
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// wiretap records every raw payload published under prefix, as the
// broker delivers it, to look for what must not leave a device.
type wiretap struct {
	mu       sync.Mutex
	payloads [][]byte
	bytes    int
}

func startWiretap(t testing.TB, url, filter string) *wiretap {
	t.Helper()
	w := &wiretap{}
	cli := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("wiretap-%d", time.Now().UnixNano())).
		SetOrderMatters(false))
	if tok := cli.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("wiretap connect: %v", tok.Error())
	}
	tok := cli.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		w.mu.Lock()
		w.payloads = append(w.payloads, append([]byte(nil), m.Payload()...))
		w.bytes += len(m.Payload())
		w.mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("wiretap subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { cli.Disconnect(0) })
	return w
}

func (w *wiretap) all() [][]byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([][]byte(nil), w.payloads...)
}

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kinds cycles through the record kinds.
var kinds = []string{store.KindResult, store.KindTelemetry, store.KindDeadLetter, store.KindAudit}

func containsAny(b []byte, needles []string) string {
	s := string(b)
	for _, n := range needles {
		if strings.Contains(s, n) {
			return n
		}
	}
	return ""
}

func jsonDecoder(b []byte) *json.Decoder { return json.NewDecoder(bytes.NewReader(b)) }
