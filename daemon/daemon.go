package daemon

import (
	"context"
	"log/slog"
	"time"

	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/internal/buildinfo"
)

// Options are how the daemon was started.
type Options struct {
	// ConfigPath is reread when pipelines are reloaded.
	ConfigPath string
	// Reload delivers a value for every reload request (SIGHUP).
	Reload <-chan struct{}

	// extra components run beside the daemon's own (tests inject faults).
	extra []component
}

// Run runs the daemon until ctx is cancelled. It returns nil after a clean
// shutdown and an error when a part could not start, or failed in a way
// that makes serving unsafe. Parts that fail otherwise are restarted.
func Run(ctx context.Context, cfg *config.Config, opts Options, log *slog.Logger) error {
	TuneGC()
	log.Info("emberd starting", "version", buildinfo.Version, "device_id", cfg.DeviceID, "state_dir", cfg.StateDir)
	d := &daemon{cfg: cfg, opts: opts, log: log, started: time.Now(), sup: newSupervisor(log.With("component", "supervisor"), cfg.ShutdownTimeout.D()+5*time.Second)}
	defer d.close()
	// Construct and wire, in dependency order; each step is in wire.go.
	steps := []func(context.Context) error{
		d.openSystemd,   // READY/STOPPING/watchdog notifications
		d.openStore,     // the bbolt file: jobs, outbox, settings
		d.openEngine,    // hardware profile, llama.cpp, the model registry
		d.openPipelines, // the config's pipelines (the fleet's join in openFleet)
		d.openJobs,      // intake, dispatcher, executor, maintainer
		d.openUplink,    // opportunistic sync, when configured
		d.openFleet,     // signed updates and their pipelines, when configured
		d.openMQTT,      // embedded broker and external client
		d.openOps,       // governors, telemetry, metrics, audit
		d.openAPI,       // gRPC listeners (opened now, served once supervised)
		d.restore,       // roll back a crash-looping update, load models
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return err
		}
	}
	// Then supervise: every long-running part is a component.
	for _, c := range append(d.components(), opts.extra...) {
		d.sup.Add(c)
	}
	return d.serve(ctx)
}
