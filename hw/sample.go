package hw

import (
	"context"
	"errors"
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

	// Missing lists sources this sample could not read because they are
	// absent (ErrNotPresent), such as a Jetson zone whose block is powered
	// off; Errors lists sources that exist but failed. Either way the other
	// sources' readings are kept.
	Missing []Note `json:"missing,omitempty"`
	Errors  []Note `json:"errors,omitempty"`
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

// Sample reads the current values. Each source is read on its own: one
// that is absent or fails leaves its fields zero and is noted in Missing or
// Errors, and every other reading is kept, down to the single zone (a Jetson
// zone at -256 °C does not blank the live ones). Only an unusable root is an
// error.
//
// Sample logs nothing: it runs every few seconds, so its notes travel with
// it instead, for the governor and telemetry to show.
func (s *Sampler) Sample(ctx context.Context) (*Sample, error) {
	e, err := newEnv(ctx, s.opts)
	if err != nil {
		return nil, err
	}
	out := &Sample{At: time.Now()}
	note := func(source string, err error) { record(source, err, &out.Missing, &out.Errors, nil) }

	var p Profile
	note("thermal", collectThermal(ctx, e, &p))
	out.Temperatures = p.Temperatures
	for _, t := range p.Temperatures {
		out.MaxCelsius = max(out.MaxCelsius, t.Celsius)
	}
	note("memory", collectMemory(ctx, e, &p))
	out.MemoryBytes, out.AvailableBytes = p.MemoryBytes, p.AvailableBytes

	var loadErr error
	out.Load1, out.Load5, out.Load15, loadErr = readLoadavg(e.procPath("loadavg"))
	note("load", loadErr)
	var cpuErr error
	out.CPUBusy, out.CPUTotal, cpuErr = readCPUStat(e.procPath("stat"))
	note("cpu", cpuErr)
	var upErr error
	out.Uptime, upErr = readUptime(e.procPath("uptime"))
	note("uptime", upErr)

	if s.opts.StateDir != "" {
		dir := nearestExisting(s.opts.StateDir)
		total, free, err := e.statfs(e.gctx, dir)
		if err != nil {
			note("disk", fmt.Errorf("measuring %s: %w", dir, err))
		} else {
			out.DiskTotal, out.DiskFree = total, free
		}
	}
	return out, nil
}

// readLoadavg reads the three load averages of /proc/loadavg; a field that
// does not parse is an error and reads 0, the others are kept.
func readLoadavg(path string) (l1, l5, l15 float64, err error) {
	s, err := readTrim(path)
	if err != nil {
		return 0, 0, 0, err
	}
	f := strings.Fields(s)
	if len(f) < 3 {
		return 0, 0, 0, fmt.Errorf("parsing %s: %d fields, want at least 3", path, len(f))
	}
	var errs []error
	loads := make([]float64, 3)
	for i := range loads {
		if loads[i], err = strconv.ParseFloat(f[i], 64); err != nil {
			loads[i] = 0
			errs = append(errs, fmt.Errorf("parsing %s: %w", path, err))
		}
	}
	return loads[0], loads[1], loads[2], errors.Join(errs...)
}

// readCPUStat reads the aggregate cpu line of /proc/stat (see
// parseCPUStat).
func readCPUStat(path string) (busy, total uint64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, fileErr(path, err)
	}
	busy, total = parseCPUStat(string(b))
	if total == 0 {
		return 0, 0, fmt.Errorf("parsing %s: no usable aggregate cpu line", path)
	}
	return busy, total, nil
}

// readUptime reads the first field of /proc/uptime, the seconds since boot.
func readUptime(path string) (time.Duration, error) {
	s, err := readTrim(path)
	if err != nil {
		return 0, err
	}
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0, fmt.Errorf("parsing %s: empty", path)
	}
	secs, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0, fmt.Errorf("parsing %s: %w", path, err)
	}
	return time.Duration(secs * float64(time.Second)), nil
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
