// Package governor keeps the board inside its envelope. The thermal
// governor lowers threads and parallelism and holds back low-priority
// jobs while the hottest sensor is above its limit, and lifts that once it
// is back below a lower resume temperature (hysteresis, so a board at the
// limit does not flap). The disk governor makes low-priority pipelines
// refuse new messages while free space on the state dir is low, before the
// store runs out. (Memory is governed at model load: the engine refuses a
// model that would not fit.)
package governor

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/hw"
	"github.com/ember-edge/ember/internal/bytesize"
)

// Thermal is the thermal governor's state.
type Thermal int

// The thermal states.
const (
	Normal Thermal = iota
	Hot
)

func (t Thermal) String() string {
	if t == Hot {
		return "hot"
	}
	return "normal"
}

// next is the thermal state machine: hot at or above max, normal again
// only at or below resume.
func next(s Thermal, celsius float64, c config.ThermalGovernor) Thermal {
	switch {
	case c.MaxCelsius == 0 || celsius == 0:
		return Normal // disabled, or no sensor
	case s == Normal && celsius >= c.MaxCelsius:
		return Hot
	case s == Hot && celsius <= c.ResumeCelsius:
		return Normal
	}
	return s
}

// Throttle is what the engine and job queue are told.
type Throttle interface {
	// Throttle lowers (on) or restores (off) every model's threads and
	// parallelism.
	Throttle(on bool, threads, parallel int)
	// HoldBelow holds back jobs below a priority (0: none).
	HoldBelow(priority int)
	// RefuseBelow makes pipelines below a priority refuse new messages
	// (0: none), with reason.
	RefuseBelow(priority int, reason string)
}

// State is what status and telemetry show.
type State struct {
	Thermal      string    `json:"thermal"`
	Celsius      float64   `json:"celsius"`
	ThermalSince time.Time `json:"thermal_since"`
	DiskLow      bool      `json:"disk_low"`
	DiskFree     uint64    `json:"disk_free_bytes"`
	// HeldBelow and RefusedBelow are the priorities being held or refused.
	HeldBelow    int `json:"held_below_priority"`
	RefusedBelow int `json:"refused_below_priority"`
}

// Governor samples the hardware and applies the governors.
type Governor struct {
	cfg     config.Governors
	sampler *hw.Sampler
	act     Throttle
	log     *slog.Logger

	mu      sync.Mutex
	thermal Thermal
	since   time.Time
	state   State
	last    *hw.Sample
}

// New returns a Governor reading through sampler.
func New(cfg config.Governors, sampler *hw.Sampler, act Throttle, log *slog.Logger) *Governor {
	return &Governor{cfg: cfg, sampler: sampler, act: act, log: log, since: time.Now(),
		state: State{Thermal: Normal.String()}}
}

// Run applies the governors every interval until ctx ends.
func (g *Governor) Run(ctx context.Context) error {
	t := time.NewTicker(g.cfg.Interval.D())
	defer t.Stop()
	for {
		g.Tick(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Tick takes one sample and applies it.
func (g *Governor) Tick(ctx context.Context) {
	s, err := g.sampler.Sample(ctx)
	if err != nil {
		g.log.Warn("hardware sample", "err", err)
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.last = s
	tc := g.cfg.Thermal
	now := next(g.thermal, s.MaxCelsius, tc)
	if now != g.thermal {
		g.log.Warn("thermal governor", "from", g.thermal, "to", now, "celsius", s.MaxCelsius,
			"after", time.Since(g.since).Round(time.Second), "max", tc.MaxCelsius, "resume", tc.ResumeCelsius)
		g.act.Throttle(now == Hot, tc.Threads, tc.Parallel)
		hold := 0
		if now == Hot {
			hold = tc.PauseBelowPriority
		}
		g.act.HoldBelow(hold)
		g.thermal, g.since = now, time.Now()
		g.state.HeldBelow = hold
	}
	g.state.Thermal, g.state.Celsius, g.state.ThermalSince = now.String(), s.MaxCelsius, g.since

	dc := g.cfg.Disk
	low := dc.MinFree > 0 && s.DiskTotal > 0 && s.DiskFree < uint64(dc.MinFree)
	if low != g.state.DiskLow {
		refuse, reason := 0, ""
		if low {
			refuse = dc.PauseBelowPriority
			reason = fmt.Sprintf("the state disk is low on space (%s free, governors.disk.min_free is %s): low-priority work is refused until space frees",
				bytesize.Size(s.DiskFree), dc.MinFree)
			g.log.Warn("disk governor: low space, refusing low-priority work", "free_mib", s.DiskFree>>20, "below_priority", refuse)
		} else {
			g.log.Info("disk governor: space recovered, accepting all work", "free_mib", s.DiskFree>>20)
		}
		g.act.RefuseBelow(refuse, reason)
		g.state.DiskLow, g.state.RefusedBelow = low, refuse
	}
	g.state.DiskFree = s.DiskFree
}

// State returns the governors' state.
func (g *Governor) State() State {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.state
}

// Last returns the latest hardware sample, or nil.
func (g *Governor) Last() *hw.Sample {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.last
}
