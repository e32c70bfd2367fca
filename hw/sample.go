package hw

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ember-edge/ember/internal/bytesize"
)

// Sample is a cheap reading of what changes: taken every few seconds by
// the governors and telemetry, unlike the Profile, which is detected once.
type Sample struct {
	At             time.Time     `json:"at"`
	MemoryBytes    uint64        `json:"memory_bytes"`
	AvailableBytes uint64        `json:"available_bytes"`
	Temperatures   []Temperature `json:"temperatures"`
	// MaxCelsius is the hottest zone, or 0 with no sensor.
	MaxCelsius float64 `json:"max_celsius"`
	Load1      float64 `json:"load1"`
	Load5      float64 `json:"load5"`
	Load15     float64 `json:"load15"`
	// CPUBusy and CPUTotal are the cumulative jiffies of /proc/stat's cpu
	// line; two samples give the busy fraction between them.
	CPUBusy  uint64        `json:"-"`
	CPUTotal uint64        `json:"-"`
	Uptime   time.Duration `json:"uptime"`
	// DiskFree and DiskTotal describe the file system of the state dir.
	DiskFree  uint64 `json:"disk_free_bytes"`
	DiskTotal uint64 `json:"disk_total_bytes"`
}

// CPUPercent is the busy share of all CPUs between an earlier sample and
// this one.
func (s *Sample) CPUPercent(prev *Sample) float64 {
	if prev == nil || s.CPUTotal <= prev.CPUTotal || s.CPUBusy < prev.CPUBusy {
		return 0
	}
	return 100 * float64(s.CPUBusy-prev.CPUBusy) / float64(s.CPUTotal-prev.CPUTotal)
}

// Sampler takes Samples through the roots of Options (fixture trees in
// tests).
type Sampler struct {
	opts Options
}

// NewSampler returns a Sampler reading through opts' roots.
func NewSampler(opts Options) *Sampler { return &Sampler{opts: opts} }

// Sample reads the current values. A missing source leaves its fields
// zero; only an unusable root is an error.
func (s *Sampler) Sample(ctx context.Context) (*Sample, error) {
	e, err := newEnv(ctx, s.opts)
	if err != nil {
		return nil, err
	}
	out := &Sample{At: time.Now()}
	var p Profile
	if err := collectThermal(ctx, e, &p); err == nil {
		out.Temperatures = p.Temperatures
		for _, t := range p.Temperatures {
			out.MaxCelsius = max(out.MaxCelsius, t.Celsius)
		}
	}
	if err := collectMemory(ctx, e, &p); err == nil {
		out.MemoryBytes, out.AvailableBytes = p.MemoryBytes, p.AvailableBytes
	}
	if b, err := os.ReadFile(e.procPath("loadavg")); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			out.Load1, _ = strconv.ParseFloat(f[0], 64)
			out.Load5, _ = strconv.ParseFloat(f[1], 64)
			out.Load15, _ = strconv.ParseFloat(f[2], 64)
		}
	}
	if b, err := os.ReadFile(e.procPath("stat")); err == nil {
		out.CPUBusy, out.CPUTotal = parseCPUStat(string(b))
	}
	if b, err := os.ReadFile(e.procPath("uptime")); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			if secs, err := strconv.ParseFloat(f[0], 64); err == nil {
				out.Uptime = time.Duration(secs * float64(time.Second))
			}
		}
	}
	if s.opts.StateDir != "" {
		if total, free, err := e.statfs(e.gctx, nearestExisting(s.opts.StateDir)); err == nil {
			out.DiskTotal, out.DiskFree = total, free
		}
	}
	return out, nil
}

// parseCPUStat sums the aggregate cpu line of /proc/stat: busy is all but
// idle and iowait.
func parseCPUStat(stat string) (busy, total uint64) {
	for _, line := range strings.Split(stat, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || f[0] != "cpu" {
			continue
		}
		for i, v := range f[1:] {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return 0, 0
			}
			total += n
			if i != 3 && i != 4 { // idle, iowait
				busy += n
			}
		}
		return busy, total
	}
	return 0, 0
}

// nearestExisting returns dir, or its nearest parent that exists.
func nearestExisting(dir string) string {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || filepath.Dir(d) == d {
			return d
		}
	}
}

// String is a one-line summary for logs.
func (s *Sample) String() string {
	return fmt.Sprintf("%.1f°C max, %s available, load %.2f", s.MaxCelsius, bytesize.Size(s.AvailableBytes), s.Load1)
}
