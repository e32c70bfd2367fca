package telemetry

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/daemon/engine"
	"github.com/ember-edge/ember/daemon/governor"
	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/hw"
	"github.com/ember-edge/ember/internal/testkit"
)

type pubs struct {
	mu     sync.Mutex
	topics []string
}

func (p *pubs) Publish(_, topic string, _ []byte, _ byte, _ bool, _ []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.topics = append(p.topics, topic)
	return nil
}

type noThrottle struct{}

func (noThrottle) Throttle(bool, int, int) {}
func (noThrottle) HoldBelow(int)           {}
func (noThrottle) RefuseBelow(int, string) {}

func setup(t *testing.T) (*Collector, *store.Store, *engine.Model) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "ember.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	eng, err := engine.New(engine.Options{LibDir: testkit.LibDir(t), Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Close)
	m, err := eng.Load(engine.ModelSpec{Name: "tiny", Path: testkit.TinyModel(t)})
	if err != nil {
		t.Fatal(err)
	}
	sampler := hw.NewSampler(hw.Options{StateDir: dir})
	gov := governor.New(config.Default().Governors, sampler, noThrottle{}, slog.New(slog.DiscardHandler))
	gov.Tick(context.Background())
	return NewCollector(Source{DeviceID: "press-07", Sampler: sampler, Engine: eng, Store: st, Governor: gov, Started: time.Now()}), st, m
}

func TestTelemetryIsStoredPublishedAndCountsTokens(t *testing.T) {
	c, st, m := setup(t)
	p := &pubs{}
	r := &Reporter{Collector: c, Store: st, Publisher: p, Interval: time.Hour, Classification: "shared", Logger: slog.New(slog.DiscardHandler)}
	if err := r.Report(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Generate(context.Background(), engine.Request{Prompt: "count me", MaxTokens: 10, Sampling: engine.Sampling{IgnoreEOS: true}},
		func(string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if err := r.Report(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs, _ := st.Records(store.RecordFilter{Kind: store.KindTelemetry})
	if len(recs) != 2 || recs[0].Priority != 1 || recs[0].Classification != "shared" {
		t.Fatalf("telemetry records %+v", recs)
	}
	var snap Snapshot
	if err := json.Unmarshal(recs[1].Data, &snap); err != nil {
		t.Fatal(err)
	}
	if snap.Seq != recs[1].Seq || snap.DeviceID != "press-07" || snap.MemoryBytes == 0 || snap.DiskTotalBytes == 0 ||
		len(snap.Models) != 1 || snap.Models[0].Tokens != 10 || snap.Models[0].TokensPerSecond <= 0 || snap.Governors.Thermal != "normal" {
		t.Fatalf("snapshot %+v", snap)
	}
	if len(p.topics) != 2 || p.topics[0] != "ember/v1/press-07/telemetry" {
		t.Fatalf("published %v", p.topics)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	c, _, _ := setup(t)
	srv, err := NewMetricsServer("127.0.0.1:0", c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	resp, err := http.Get("http://" + srv.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`ember_tokens_generated_total{model="tiny"}`, "ember_outbox_records", "ember_thermal_throttled 0",
		"ember_disk_free_bytes", "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestHardwareNotesAreReported samples the Jetson fixture, whose cv zones
// read -256 °C while powered off: the snapshot keeps the live zones and
// lists the dead ones, and /metrics counts them by source.
func TestHardwareNotesAreReported(t *testing.T) {
	c, _, _ := setup(t)
	jetson := filepath.Join("..", "..", "hw", "testdata", "jetson-orin-nano")
	c.src.Sampler = hw.NewSampler(hw.Options{ProcRoot: filepath.Join(jetson, "proc"), SysRoot: filepath.Join(jetson, "sys")})
	snap, err := c.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Temperatures) != 6 {
		t.Errorf("temperatures %+v, want the six live zones", snap.Temperatures)
	}
	var dead []string
	for _, n := range snap.HardwareMissing {
		if n.Source == "thermal" {
			dead = append(dead, n.Detail)
		}
	}
	if len(dead) != 3 || !strings.Contains(dead[0], "thermal_zone2 (cv0-thermal)") {
		t.Errorf("thermal notes %q, want the three powered-off cv zones", dead)
	}
	b, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"hardware_missing":[{"source":"thermal","detail":"thermal_zone2 (cv0-thermal)`) {
		t.Errorf("snapshot JSON lacks the missing zones: %s", b)
	}

	srv, err := NewMetricsServer("127.0.0.1:0", c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	resp, err := http.Get("http://" + srv.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `ember_hardware_unavailable{kind="missing",source="thermal"} 3`; !strings.Contains(string(body), want) {
		t.Errorf("/metrics lacks %q", want)
	}
}
