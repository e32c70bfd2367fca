// Package telemetry reports the appliance's health: a periodic snapshot
// (CPU, load, memory, temperatures, disk, uptime, and inference counters)
// that is stored in the outbox as a telemetry record (so it syncs later),
// published on ember/v1/<device>/telemetry, and a Prometheus /metrics
// endpoint with the same values and the usual Go and process metrics.
package telemetry

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/ember-edge/ember/daemon/engine"
	"github.com/ember-edge/ember/daemon/governor"
	"github.com/ember-edge/ember/daemon/jobs"
	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/daemon/topic"
	"github.com/ember-edge/ember/hw"
)

// Snapshot is one telemetry record.
type Snapshot struct {
	DeviceID       string             `json:"device_id"`
	Seq            uint64             `json:"seq"`
	At             time.Time          `json:"at"`
	UptimeSeconds  float64            `json:"uptime_seconds"`
	ProcessSeconds float64            `json:"process_seconds"`
	CPUPercent     float64            `json:"cpu_percent"`
	Load1          float64            `json:"load1"`
	Load5          float64            `json:"load5"`
	Load15         float64            `json:"load15"`
	MemoryBytes    uint64             `json:"memory_bytes"`
	AvailableBytes uint64             `json:"available_bytes"`
	Temperatures   []hw.Temperature   `json:"temperatures"`
	DiskFreeBytes  uint64             `json:"disk_free_bytes"`
	DiskTotalBytes uint64             `json:"disk_total_bytes"`
	Governors      governor.State     `json:"governors"`
	Models         []ModelStats       `json:"models"`
	Jobs           jobs.Stats         `json:"jobs"`
	Backlog        map[string]int     `json:"backlog"`
	Outbox         store.OutboxStats  `json:"outbox"`
	Sync           *store.SyncBacklog `json:"sync,omitempty"`
	Extra          map[string]any     `json:"extra,omitempty"`

	// HardwareMissing and HardwareErrors are the hardware sample's notes:
	// sources absent (a powered-off Jetson zone) or broken, reported beside
	// the readings that were taken.
	HardwareMissing []hw.Note `json:"hardware_missing,omitempty"`
	HardwareErrors  []hw.Note `json:"hardware_errors,omitempty"`

	// Components are the daemon's supervised parts and their restarts.
	Components []Component `json:"components,omitempty"`
}

// Component is one supervised part of the daemon and its health.
type Component struct {
	Name    string `json:"name"`
	Running bool   `json:"running"`
	// Done: the component finished its work and is not restarted.
	Done        bool      `json:"done,omitempty"`
	Restarts    uint64    `json:"restarts"`
	LastError   string    `json:"last_error,omitempty"`
	LastFailure time.Time `json:"last_failure,omitzero"`
}

// ModelStats are one loaded model's counters.
type ModelStats struct {
	Name            string  `json:"name"`
	Threads         int     `json:"threads"`
	QueueDepth      int     `json:"queue_depth"`
	Active          int     `json:"active"`
	Requests        uint64  `json:"requests"`
	Tokens          uint64  `json:"tokens"`
	TokensPerSecond float64 `json:"tokens_per_second"`
	Cancelled       uint64  `json:"cancelled"`
}

// Source is what a snapshot is made of.
type Source struct {
	DeviceID string
	Sampler  *hw.Sampler
	Engine   *engine.Engine
	Jobs     *jobs.Queue
	Store    *store.Store
	Governor *governor.Governor
	Started  time.Time
	// Components reports the supervised components; nil: none.
	Components func() []Component
}

// Collector takes snapshots; it remembers the previous one for rates.
type Collector struct {
	src Source

	mu         sync.Mutex
	prevSample *hw.Sample
	prevTokens map[string]uint64
	prevAt     time.Time
	last       *Snapshot
}

// NewCollector returns a Collector over src.
func NewCollector(src Source) *Collector {
	return &Collector{src: src, prevTokens: map[string]uint64{}}
}

// Snapshot takes a snapshot now.
func (c *Collector) Snapshot(ctx context.Context) (*Snapshot, error) {
	s, err := c.src.Sampler.Sample(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	snap := &Snapshot{
		DeviceID: c.src.DeviceID, At: s.At, UptimeSeconds: s.Uptime.Seconds(),
		ProcessSeconds: time.Since(c.src.Started).Seconds(), CPUPercent: s.CPUPercent(c.prevSample),
		Load1: s.Load1, Load5: s.Load5, Load15: s.Load15, MemoryBytes: s.MemoryBytes, AvailableBytes: s.AvailableBytes,
		Temperatures: s.Temperatures, DiskFreeBytes: s.DiskFree, DiskTotalBytes: s.DiskTotal,
		HardwareMissing: s.Missing, HardwareErrors: s.Errors,
	}
	if snap.Temperatures == nil {
		snap.Temperatures = []hw.Temperature{}
	}
	if c.src.Governor != nil {
		snap.Governors = c.src.Governor.State()
	}
	elapsed := s.At.Sub(c.prevAt).Seconds()
	for _, m := range c.src.Engine.Models() {
		st := m.Stats()
		ms := ModelStats{Name: m.Name(), Threads: m.Threads(), QueueDepth: st.QueueDepth, Active: st.Active,
			Requests: st.Requests, Tokens: st.Tokens, Cancelled: st.Cancelled}
		if prev, ok := c.prevTokens[m.Name()]; ok && elapsed > 0 && st.Tokens >= prev {
			ms.TokensPerSecond = float64(st.Tokens-prev) / elapsed
		}
		c.prevTokens[m.Name()] = st.Tokens
		snap.Models = append(snap.Models, ms)
	}
	if snap.Models == nil {
		snap.Models = []ModelStats{}
	}
	if c.src.Jobs != nil {
		snap.Jobs = c.src.Jobs.Stats()
	}
	if c.src.Components != nil {
		snap.Components = c.src.Components()
	}
	if c.src.Store != nil {
		snap.Backlog, _ = c.src.Store.Backlog()
		snap.Outbox, _ = c.src.Store.OutboxStats()
		if b, err := c.src.Store.SyncBacklog(); err == nil {
			snap.Sync = &b
		}
	}
	c.prevSample, c.prevAt, c.last = s, s.At, snap
	return snap, nil
}

// Last returns the latest snapshot, or nil.
func (c *Collector) Last() *Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// Publisher sends a snapshot over MQTT.
type Publisher interface {
	Publish(broker, topic string, payload []byte, qos byte, retain bool, correlation []byte) error
}

// Reporter writes a snapshot every interval: to the outbox and over MQTT.
type Reporter struct {
	Collector      *Collector
	Store          *store.Store
	Publisher      Publisher
	Interval       time.Duration
	Classification string
	Logger         *slog.Logger
}

// priority of telemetry records: below every pipeline's default, so
// results and alarms sync first.
const priority = 1

// Run reports until ctx ends.
func (r *Reporter) Run(ctx context.Context) error {
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := r.Report(ctx); err != nil {
			r.Logger.Warn("telemetry", "err", err)
		}
	}
}

// Report takes and writes one snapshot.
func (r *Reporter) Report(ctx context.Context) error {
	snap, err := r.Collector.Snapshot(ctx)
	if err != nil {
		return err
	}
	rec, err := r.Store.Append(ctx, store.Record{Kind: store.KindTelemetry, DeviceID: snap.DeviceID, Priority: priority,
		Classification: r.Classification}, func(rec *store.Record) error {
		snap.Seq = rec.Seq
		var err error
		rec.Data, err = json.Marshal(snap)
		return err
	}, time.Now())
	if err != nil {
		return err
	}
	if r.Publisher != nil {
		_ = r.Publisher.Publish("", topic.Telemetry(snap.DeviceID), rec.Data, 0, false, nil)
	}
	return nil
}
