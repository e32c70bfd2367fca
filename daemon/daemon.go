package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/mem"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ember-edge/ember/daemon/api"
	"github.com/ember-edge/ember/daemon/audit"
	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/daemon/engine"
	"github.com/ember-edge/ember/daemon/governor"
	"github.com/ember-edge/ember/daemon/jobs"
	"github.com/ember-edge/ember/daemon/llamacpp"
	"github.com/ember-edge/ember/daemon/models"
	"github.com/ember-edge/ember/daemon/mqtt"
	"github.com/ember-edge/ember/daemon/release"
	"github.com/ember-edge/ember/daemon/sdnotify"
	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/daemon/telemetry"
	"github.com/ember-edge/ember/hw"
	"github.com/ember-edge/ember/internal/buildinfo"
	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
	"github.com/ember-edge/ember/sync/fleet"
)

// Options are how the daemon was started.
type Options struct {
	// ConfigPath is reread when pipelines are reloaded.
	ConfigPath string
	// Reload delivers a value for every reload request (SIGHUP).
	Reload <-chan struct{}
}

// Run runs the daemon until ctx is cancelled. It returns nil after a clean
// shutdown and an error when a part could not start or failed.
func Run(ctx context.Context, cfg *config.Config, opts Options, log *slog.Logger) error {
	started := time.Now()
	TuneGC()
	log.Info("emberd starting", "version", buildinfo.Version, "device_id", cfg.DeviceID, "state_dir", cfg.StateDir)
	notify, err := sdnotify.FromEnv()
	if err != nil {
		return err
	}
	watchdog, err := sdnotify.WatchdogInterval()
	if err != nil {
		return err
	}
	notified := func(err error) {
		if err != nil {
			log.Warn("systemd notification", "err", err)
		}
	}

	st, err := store.Open(cfg.DBPath(), store.Options{})
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("close store", "err", err)
		}
	}()

	libDir, err := llamacpp.Resolve(cfg.Llama.LibDir)
	if err != nil {
		return err
	}
	prof, err := hw.Detect(ctx, hw.Options{StateDir: cfg.StateDir, LibDir: libDir, Logger: log})
	if err != nil {
		return fmt.Errorf("detect hardware: %w", err)
	}
	for _, w := range prof.Recommended.Warnings {
		log.Warn("hardware", "warning", w)
	}

	eng, err := engine.New(engineOptions(cfg, prof, libDir, log))
	if err != nil {
		return err
	}
	defer eng.Close()

	reg := models.New(st, cfg.Models, cfg.ModelStoreDir())
	pub := &mqtt.Publisher{}
	jm := jobs.New(st, eng, reg, pub, jobs.Options{
		DeviceID: cfg.DeviceID,
		Limits: store.Limits{MaxRecords: uint64(cfg.Store.MaxRecords), MaxBytes: uint64(cfg.Store.MaxBytes),
			MaxAge: cfg.Store.MaxAge.D()},
		DedupWindow: cfg.Store.DedupWindow.D(),
		MaxPayload:  int(cfg.MQTT.Embedded.MaxPayload),
		Logger:      log.With("component", "jobs"),
	})
	up, err := newUplink(cfg, st, log)
	if err != nil {
		return err
	}
	// The running pipelines are the config's with the active fleet
	// release's bundle over them; either side can change (a reload, an
	// update) and the set is rebuilt from both.
	var pipeMu sync.Mutex
	localPipes, fleetPipes := cfg.Pipelines, []config.Pipeline(nil)
	setPipes := func(local, fromFleet []config.Pipeline) ([]string, error) {
		pipeMu.Lock()
		defer pipeMu.Unlock()
		ps, err := jobs.CompilePipelines(mergePipelines(local, fromFleet), cfg.DeviceID)
		if err != nil {
			return nil, err
		}
		localPipes, fleetPipes = local, fromFleet
		jm.SetPipelines(ps)
		var names []string
		for _, p := range ps {
			names = append(names, p.Name())
		}
		return names, nil
	}
	var applier *release.Applier
	var updater *fleet.Updater
	if len(cfg.Fleet.TrustedKeys) > 0 {
		applier = release.New(release.Options{Store: st, Engine: eng, Spec: modelSpec(cfg), Logger: log.With("component", "release"),
			SetPipelines: func(fp []config.Pipeline) error {
				pipeMu.Lock()
				local := localPipes
				pipeMu.Unlock()
				_, err := setPipes(local, fp)
				return err
			}})
		if fleetPipes, err = applier.Pipelines(); err != nil {
			return fmt.Errorf("fleet pipelines: %w", err)
		}
		if updater, err = newUpdater(cfg, st, up, applier, prof, log); err != nil {
			return fmt.Errorf("fleet updates: %w", err)
		}
	}
	if _, err := setPipes(localPipes, fleetPipes); err != nil {
		return fmt.Errorf("pipelines: %w", err)
	}
	in, err := mqtt.NewIngester(jm, cfg.DeviceID, log.With("component", "ingest"))
	if err != nil {
		return err
	}
	if cfg.MQTT.Embedded.Listen != "" || cfg.MQTT.Embedded.TLS.Cert != "" {
		if pub.Broker, err = mqtt.NewBroker(cfg.MQTT.Embedded, in, cfg.DeviceID, log); err != nil {
			return err
		}
	}
	if cfg.MQTT.External.URL != "" {
		if pub.Client, err = mqtt.NewClient(cfg.MQTT.External, in, cfg.DeviceID, log); err != nil {
			return err
		}
	}
	reload := func() ([]string, error) {
		fresh, err := config.Load(opts.ConfigPath)
		if err != nil {
			return nil, err
		}
		pipeMu.Lock()
		fp := fleetPipes
		pipeMu.Unlock()
		names, err := setPipes(fresh.Pipelines, fp)
		if err != nil {
			return nil, err
		}
		if pub.Client != nil {
			pub.Client.Resubscribe()
		}
		log.Info("pipelines reloaded", "pipelines", names)
		return names, nil
	}
	if opts.ConfigPath == "" {
		reload = nil
	}
	sampler := hw.NewSampler(hw.Options{StateDir: cfg.StateDir})
	gov := governor.New(cfg.Governors, sampler, &throttle{eng: eng, jobs: jm}, log.With("component", "governor"))
	collector := telemetry.NewCollector(telemetry.Source{DeviceID: cfg.DeviceID, Sampler: sampler, Engine: eng,
		Jobs: jm, Store: st, Governor: gov, Started: started})
	var metrics *telemetry.MetricsServer
	if cfg.Metrics.Listen != "" {
		if metrics, err = telemetry.NewMetricsServer(cfg.Metrics.Listen, collector); err != nil {
			return err
		}
	}
	auditLog := audit.New(st, cfg.DeviceID, log.With("component", "audit"))
	srv, err := api.New(api.Deps{
		Config: cfg, Engine: eng, Registry: reg, Store: st, Jobs: jm, ReloadPipelines: reload, Logger: log,
		Device: deviceInfo(cfg, prof, started), Audit: auditLog, Hardware: prof, Governor: gov,
		Uplink: up, Updater: updater,
	})
	if err != nil {
		return err
	}
	if updater != nil {
		// Before any model loads: an update that keeps crashing the
		// daemon is rolled back here, so the old release loads instead.
		if err := updater.Boot(ctx); err != nil {
			return fmt.Errorf("fleet update boot: %w", err)
		}
	}
	loadAtStart(eng, reg, log)
	if applier != nil {
		if err := applier.Restore(ctx); err != nil {
			log.Error("restore the fleet release", "err", err)
		}
	}
	auditLog.Record(ctx, "daemon.start", "emberd", nil, map[string]any{"version": buildinfo.Version, "boot": st.Boot()})

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Serve(gctx, cfg.ShutdownTimeout.D()) })
	g.Go(func() error { return jm.Run(gctx) })
	g.Go(func() error { return gov.Run(gctx) })
	if cfg.Telemetry.Interval > 0 {
		rep := &telemetry.Reporter{Collector: collector, Store: st, Publisher: pub, Interval: cfg.Telemetry.Interval.D(),
			Classification: cfg.Telemetry.Classification, Logger: log.With("component", "telemetry")}
		g.Go(func() error { return rep.Run(gctx) })
	}
	if metrics != nil {
		g.Go(func() error { return metrics.Run(gctx) })
		log.Info("metrics endpoint", "addr", "http://"+metrics.Addr()+"/metrics")
	}
	g.Go(func() error {
		mo := jobs.MaintainOptions{JobRetention: cfg.Store.JobRetention.D(),
			CompactMin: int64(cfg.Store.CompactMin), CompactRatio: cfg.Store.CompactRatio}
		if up != nil {
			mo.SyncRetention = cfg.Uplink.Retention.D()
		}
		return jm.Maintain(gctx, mo)
	})
	if pub.Broker != nil {
		g.Go(func() error { return pub.Broker.Run(gctx) })
	}
	if up != nil {
		g.Go(func() error { return up.Run(gctx) })
	}
	if updater != nil {
		g.Go(func() error { return updater.Run(gctx) })
	}
	if pub.Client != nil {
		g.Go(func() error { return pub.Client.Run(gctx) })
	}
	if opts.Reload != nil && reload != nil {
		g.Go(func() error {
			for {
				select {
				case <-gctx.Done():
					return nil
				case <-opts.Reload:
					notified(notify.Reloading())
					if _, err := reload(); err != nil {
						log.Error("reload refused; the running pipelines stay", "err", err)
					}
					notified(notify.Ready())
				}
			}
		})
	}
	g.Go(func() error {
		err := reg.HashConfigModels(gctx.Done(), func(path string, done, total int64) {
			log.Info("hashing model", "path", path, "done_mib", done>>20, "total_mib", total>>20)
		})
		if err != nil {
			log.Warn("model hash", "err", err)
		}
		return nil // a hash failure must not stop the daemon
	})
	log.Info("emberd ready", "listen", srv.Addrs(), "models", len(eng.Models()))
	// READY only now: the store is open, the API listens (its sockets were
	// opened by api.New) and the configured models are loaded.
	notified(notify.Notify(sdnotify.StateReady, fmt.Sprintf("STATUS=serving %d models", len(eng.Models()))))
	g.Go(func() error {
		wd := &sdnotify.Watchdog{Notifier: notify, Interval: watchdog, Logger: log.With("component", "watchdog")}
		// A decode step that runs for minutes is a hung llama.cpp call:
		// stop pinging, and systemd restarts emberd.
		return wd.Run(gctx, func() bool { return len(eng.Stalled(5*time.Minute)) == 0 })
	})
	g.Go(func() error {
		<-gctx.Done()
		notified(notify.Stopping())
		return nil
	})
	err = g.Wait()
	log.Info("emberd stopping")
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
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
// logged and skipped: the appliance keeps serving the others.
func loadAtStart(eng *engine.Engine, reg *models.Registry, log *slog.Logger) {
	entries, err := reg.List()
	if err != nil {
		log.Error("list models", "err", err)
		return
	}
	for _, e := range entries {
		if e.Source != models.SourceConfig || !e.Load {
			continue
		}
		if _, err := eng.Load(engine.ModelSpec{Name: e.Name, Path: e.Path, Threads: e.Threads, Context: e.Context}); err != nil {
			log.Error("model not loaded", "model", e.Name, "err", err)
		}
	}
}

func deviceInfo(cfg *config.Config, prof *hw.Profile, started time.Time) api.DeviceInfo {
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
		}
	}
}

// throttle is the governors' hold on the engine and the job queue.
type throttle struct {
	eng  *engine.Engine
	jobs *jobs.Manager
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

func (t *throttle) HoldBelow(p int)                  { t.jobs.HoldBelow(p) }
func (t *throttle) RefuseBelow(p int, reason string) { t.jobs.RefuseBelow(p, reason) }
