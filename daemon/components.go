package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/shirou/gopsutil/v4/mem"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ember-edge/ember/daemon/api"
	"github.com/ember-edge/ember/daemon/audit"
	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/daemon/engine"
	"github.com/ember-edge/ember/daemon/jobs"
	"github.com/ember-edge/ember/daemon/llamacpp"
	"github.com/ember-edge/ember/daemon/models"
	"github.com/ember-edge/ember/daemon/sdnotify"
	"github.com/ember-edge/ember/daemon/telemetry"
	"github.com/ember-edge/ember/hw"
	"github.com/ember-edge/ember/internal/buildinfo"
	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
)

// components lists the daemon's long-running parts. A new capability is
// one line here (and its own package).
func (d *daemon) components() []component {
	cfg := d.cfg
	cs := []component{
		{name: "api", critical: true, run: func(ctx context.Context) error { return d.srv.Serve(ctx, cfg.ShutdownTimeout.D()) }},
		{name: "dispatcher", run: d.queue.Dispatcher.Run},
		{name: "maintainer", run: func(ctx context.Context) error { return d.queue.Maintainer.Run(ctx, d.maintainOptions()) }},
		{name: "governor", run: d.gov.Run},
		{name: "model-hash", run: d.hashModels},
		{name: "watchdog", run: d.runWatchdog},
		{name: "audit", run: d.audit.Run},
	}
	if cfg.Telemetry.Interval > 0 {
		rep := &telemetry.Reporter{Collector: d.coll, Store: d.st, Publisher: d.pub, Interval: cfg.Telemetry.Interval.D(),
			Classification: cfg.Telemetry.Classification, Logger: d.log.With("component", "telemetry")}
		cs = append(cs, component{name: "telemetry", run: rep.Run})
	}
	if d.metrics != nil {
		cs = append(cs, component{name: "metrics", run: d.metrics.Run})
	}
	if d.pub.Broker != nil {
		// Its listeners open once; failing to serve them is a start-up error.
		cs = append(cs, component{name: "mqtt-broker", critical: true, run: d.pub.Broker.Run})
	}
	if d.pub.Client != nil {
		cs = append(cs, component{name: "mqtt-client", run: d.pub.Client.Run})
	}
	if d.up != nil {
		cs = append(cs, component{name: "uplink", run: d.up.Run})
	}
	if d.updater != nil {
		cs = append(cs, component{name: "fleet-updater", run: d.updater.Run})
	}
	if d.opts.Reload != nil && d.opts.ConfigPath != "" {
		cs = append(cs, component{name: "reload", run: d.reloadOnSignal})
	}
	return cs
}

// serve supervises the components until ctx ends, telling systemd when
// the daemon is ready and when it stops.
func (d *daemon) serve(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- d.sup.Serve(ctx) }()
	if d.metrics != nil {
		d.log.Info("metrics endpoint", "addr", "http://"+d.metrics.Addr()+"/metrics")
	}
	d.log.Info("emberd ready", "listen", d.srv.Addrs(), "models", len(d.eng.Models()))
	// READY only now: the store is open, the API listens (its sockets were
	// opened by api.New) and the configured models are loaded.
	d.notified(d.notify.Notify(sdnotify.StateReady, fmt.Sprintf("STATUS=serving %d models", len(d.eng.Models()))))
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		d.notified(d.notify.Stopping())
		err = <-done
	}
	d.log.Info("emberd stopping")
	return err
}

func (d *daemon) maintainOptions() jobs.MaintainOptions {
	mo := jobs.MaintainOptions{JobRetention: d.cfg.Store.JobRetention.D(),
		CompactMin: int64(d.cfg.Store.CompactMin), CompactRatio: d.cfg.Store.CompactRatio}
	if d.up != nil {
		mo.SyncRetention = d.cfg.Uplink.Retention.D()
	}
	return mo
}

// reloadOnSignal reloads the pipelines on every SIGHUP.
func (d *daemon) reloadOnSignal(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.opts.Reload:
			d.notified(d.notify.Reloading())
			names, err := d.reloadPipelines()
			d.audit.Record(ctx, "pipelines.reload", "SIGHUP", err, map[string]any{"pipelines": names})
			if err != nil {
				d.log.Error("reload refused; the running pipelines stay", "err", err)
			}
			d.notified(d.notify.Ready())
		}
	}
}

// hashModels hashes the configured model files once; a failure is
// logged, never fatal.
func (d *daemon) hashModels(ctx context.Context) error {
	err := d.reg.HashConfigModels(ctx.Done(), func(path string, done, total int64) {
		d.log.Info("hashing model", "path", path, "done_mib", done>>20, "total_mib", total>>20)
	})
	if err != nil {
		d.log.Warn("model hash", "err", err)
	}
	return nil
}

// runWatchdog pings systemd's watchdog while inference is healthy: a
// decode step that runs for minutes is a hung llama.cpp call, so the
// pings stop and systemd restarts emberd.
func (d *daemon) runWatchdog(ctx context.Context) error {
	wd := &sdnotify.Watchdog{Notifier: d.notify, Interval: d.watchdog, Logger: d.log.With("component", "watchdog")}
	return wd.Run(ctx, func() bool { return len(d.eng.Stalled(5*time.Minute)) == 0 })
}
func engineOptions(cfg *config.Config, prof *hw.Profile, libDir string, log *slog.Logger) engine.Options {
	rec := prof.Recommended
	threads := cfg.Engine.Threads
	if threads == 0 {
		threads = rec.Threads.Value
		log.Info("threads derived from hardware", "threads", threads, "reason", rec.Threads.Reason)
	}
	parallel := cfg.Engine.Parallel
	if parallel == 0 {
		parallel = rec.Parallel.Value
	}
	return engine.Options{
		LibDir:         libDir,
		Verbose:        cfg.Llama.Verbose,
		Threads:        threads,
		ContextCap:     rec.Context.Value,
		Context:        cfg.Engine.Context,
		Parallel:       parallel,
		GPULayers:      rec.GPULayers.Value,
		QueueSize:      cfg.Engine.QueueSize,
		MaxTokens:      cfg.Engine.MaxTokens,
		MaxPromptBytes: cfg.Engine.MaxPromptBytes,
		MemoryReserve:  uint64(cfg.Engine.MemoryReserve),
		StreamInterval: cfg.Engine.StreamInterval.D(),
		Logger:         log,
	}
}

// loadAtStart loads the models marked for it. A model that fails is
// logged and skipped: the appliance keeps serving the others. Each load
// leaves an audit entry (actor emberd), as a load over gRPC does.
func loadAtStart(ctx context.Context, eng *engine.Engine, reg *models.Registry, al *audit.Log, log *slog.Logger) {
	entries, err := reg.List()
	if err != nil {
		log.Error("list models", "err", err)
		return
	}
	for _, e := range entries {
		if e.Source != models.SourceConfig || !e.Load {
			continue
		}
		_, err := eng.Load(engine.ModelSpec{Name: e.Name, Path: e.Path, Threads: e.Threads, Context: e.Context})
		al.Record(ctx, "model.load", "emberd", err, map[string]any{"model": e.Name, "path": e.Path, "context": e.Context,
			"threads": e.Threads, "at_start": true})
		if err != nil {
			log.Error("model not loaded", "model", e.Name, "err", err)
		}
	}
}

func deviceInfo(cfg *config.Config, prof *hw.Profile, started time.Time, sup *Supervisor) api.DeviceInfo {
	host, _ := os.Hostname()
	return func() *emberv1.InfoResponse {
		h := &emberv1.HostSummary{
			Hostname: host, Os: runtime.GOOS, Arch: runtime.GOARCH, Platform: prof.Platform,
			CpuModel: prof.CPU.ModelName, PhysicalCores: int32(prof.CPU.PhysicalCores),
			LogicalCores: int32(prof.CPU.LogicalCores), MemoryBytes: prof.MemoryBytes,
		}
		if vm, err := mem.VirtualMemory(); err == nil {
			h.AvailableBytes = vm.Available
		}
		return &emberv1.InfoResponse{
			DeviceId: cfg.DeviceID, Version: buildinfo.Version, Commit: buildinfo.Commit,
			BuildDate: buildinfo.BuildDate, GoVersion: buildinfo.GoVersion(),
			StartedAt: timestamppb.New(started), Uptime: durationpb.New(time.Since(started)),
			Host: h, LlamaLibDir: llamacpp.Dir(), ComputeDevices: llamacpp.Devices(), StateDir: cfg.StateDir,
			Components: componentsPB(sup.Status()),
		}
	}
}

// throttle is the governors' hold on the engine and the job queue.
type throttle struct {
	eng   *engine.Engine
	queue *jobs.Queue
}

func (t *throttle) Throttle(on bool, threads, parallel int) {
	for _, m := range t.eng.Models() {
		st := m.Settings()
		if on {
			m.SetThreads(min(threads, st.Threads))
			m.SetParallelLimit(parallel)
		} else {
			m.SetThreads(st.Threads)
			m.SetParallelLimit(st.Parallel)
		}
	}
}

func (t *throttle) HoldBelow(p int)                  { t.queue.Dispatcher.HoldBelow(p) }
func (t *throttle) RefuseBelow(p int, reason string) { t.queue.Intake.RefuseBelow(p, reason) }

func componentsPB(cs []telemetry.Component) []*emberv1.Component {
	out := make([]*emberv1.Component, len(cs))
	for i, c := range cs {
		out[i] = &emberv1.Component{Name: c.Name, Running: c.Running, Done: c.Done, Restarts: c.Restarts, LastError: c.LastError}
		if !c.LastFailure.IsZero() {
			out[i].LastFailure = timestamppb.New(c.LastFailure)
		}
	}
	return out
}
