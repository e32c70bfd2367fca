package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ember-edge/ember/daemon/api"
	"github.com/ember-edge/ember/daemon/audit"
	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/daemon/engine"
	"github.com/ember-edge/ember/daemon/governor"
	"github.com/ember-edge/ember/daemon/jobs"
	"github.com/ember-edge/ember/daemon/llamacpp"
	"github.com/ember-edge/ember/daemon/models"
	"github.com/ember-edge/ember/daemon/mqtt"
	"github.com/ember-edge/ember/daemon/pipeline"
	"github.com/ember-edge/ember/daemon/release"
	"github.com/ember-edge/ember/daemon/sdnotify"
	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/daemon/telemetry"
	"github.com/ember-edge/ember/hw"
	"github.com/ember-edge/ember/internal/buildinfo"
	"github.com/ember-edge/ember/sync/fleet"
	"github.com/ember-edge/ember/sync/uplink"
)

// daemon holds the parts Run wires together. Each open step fills some
// fields from those before it; components then runs the long-lived ones.
type daemon struct {
	cfg     *config.Config
	opts    Options
	log     *slog.Logger
	started time.Time
	closers []func()

	notify   *sdnotify.Notifier
	watchdog time.Duration

	st    *store.Store
	prof  *hw.Profile
	eng   *engine.Engine
	reg   *models.Registry
	pipes *pipeline.Set
	queue *jobs.Queue
	pub   *mqtt.Publisher

	up      *uplink.Uplink
	applier *release.Applier
	updater *fleet.Updater

	ingester *mqtt.Ingester
	sampler  *hw.Sampler
	gov      *governor.Governor
	coll     *telemetry.Collector
	metrics  *telemetry.MetricsServer
	audit    *audit.Log
	srv      *api.Server
	sup      *Supervisor
}

// close releases what the open steps acquired, last first.
func (d *daemon) close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
}

func (d *daemon) openSystemd(context.Context) error {
	var err error
	if d.notify, err = sdnotify.FromEnv(); err != nil {
		return err
	}
	d.watchdog, err = sdnotify.WatchdogInterval()
	return err
}

// notified logs a failed systemd notification; it never stops emberd.
func (d *daemon) notified(err error) {
	if err != nil {
		d.log.Warn("systemd notification", "err", err)
	}
}

func (d *daemon) openStore(context.Context) error {
	st, err := store.Open(d.cfg.DBPath(), store.Options{})
	if err != nil {
		return err
	}
	d.st = st
	d.closers = append(d.closers, func() {
		if err := st.Close(); err != nil {
			d.log.Error("close store", "err", err)
		}
	})
	return d.openAudit()
}

// openAudit loads (or, on first start, makes) the device's audit key and
// opens the audit chain. A new key is recorded in the chain at once, so
// that its public half goes upstream before any checkpoint it signs.
func (d *daemon) openAudit() error {
	key, created, err := audit.LoadKey(d.cfg.AuditKeyPath())
	if err != nil {
		return err
	}
	a := d.cfg.Audit
	d.audit = audit.New(audit.Options{Store: d.st, Key: key, DeviceID: d.cfg.DeviceID, Upstream: d.cfg.Uplink.URL != "",
		Inference: a.Inference == config.AuditInferenceMetadata, MaxEntries: a.MaxEntries,
		CheckpointInterval: a.CheckpointInterval.D(), Logger: d.log.With("component", "audit")})
	if created {
		if err := d.audit.Write(context.Background(), "audit.key", "emberd", nil,
			map[string]any{"public_key": audit.PublicKeyString(d.audit.PublicKey())}); err != nil {
			return err
		}
	}
	return nil
}

func (d *daemon) openEngine(ctx context.Context) error {
	libDir, err := llamacpp.Resolve(d.cfg.Llama.LibDir)
	if err != nil {
		return err
	}
	if d.prof, err = hw.Detect(ctx, hw.Options{StateDir: d.cfg.StateDir, LibDir: libDir, Logger: d.log}); err != nil {
		return fmt.Errorf("detect hardware: %w", err)
	}
	for _, w := range d.prof.Recommended.Warnings {
		d.log.Warn("hardware", "warning", w)
	}
	if d.eng, err = engine.New(engineOptions(d.cfg, d.prof, libDir, d.log)); err != nil {
		return err
	}
	d.closers = append(d.closers, d.eng.Close)
	d.reg = models.New(d.st, d.cfg.Models, d.cfg.ModelStoreDir())
	return nil
}

func (d *daemon) openPipelines(context.Context) error {
	d.pipes = pipeline.NewSet(d.cfg.DeviceID)
	d.pipes.EnableRequests(d.cfg.MQTT.Requests.Enabled)
	if _, err := d.pipes.SetLocal(d.cfg.Pipelines); err != nil {
		return fmt.Errorf("pipelines: %w", err)
	}
	return nil
}

func (d *daemon) openJobs(context.Context) error {
	d.pub = &mqtt.Publisher{}
	cfg := d.cfg
	d.queue = jobs.New(jobs.Deps{Store: d.st, Pipelines: d.pipes, Inference: d.eng, Models: d.reg, Publisher: d.pub,
		Auditor: d.audit},
		jobs.Options{
			DeviceID: cfg.DeviceID,
			Limits: store.Limits{MaxRecords: uint64(cfg.Store.MaxRecords), MaxBytes: uint64(cfg.Store.MaxBytes),
				MaxAge: cfg.Store.MaxAge.D()},
			DedupWindow:          cfg.Store.DedupWindow.D(),
			MaxPayload:           int(cfg.MQTT.Embedded.MaxPayload),
			RequestPriority:      &cfg.MQTT.Requests.Priority,
			RequestMaxTokens:     cfg.MQTT.Requests.MaxTokens,
			DirectClassification: cfg.MQTT.Requests.Classification,
			Logger:               d.log.With("component", "jobs"),
		})
	return nil
}

func (d *daemon) openUplink(context.Context) error {
	var err error
	d.up, err = newUplink(d.cfg, d.st, d.log)
	return err
}

// openFleet builds the release applier and the updater when trusted keys
// are configured, and puts the active release's pipelines over the
// config's.
func (d *daemon) openFleet(context.Context) error {
	if len(d.cfg.Fleet.TrustedKeys) == 0 {
		return nil
	}
	d.applier = release.New(release.Options{Store: d.st, Engine: d.eng, Spec: modelSpec(d.cfg),
		Logger: d.log.With("component", "release"), SetPipelines: d.pipes.SetFleet, CheckPipelines: d.pipes.CheckFleet})
	fromFleet, err := d.applier.Pipelines()
	if err != nil {
		return fmt.Errorf("fleet pipelines: %w", err)
	}
	if err := d.pipes.SetFleet(fromFleet); err != nil {
		return fmt.Errorf("pipelines: %w", err)
	}
	if d.updater, err = newUpdater(d.cfg, d.st, d.up, d.applier, d.prof, d.audit, d.log); err != nil {
		return fmt.Errorf("fleet updates: %w", err)
	}
	return nil
}

func (d *daemon) openMQTT(context.Context) error {
	var err error
	if d.ingester, err = mqtt.NewIngester(d.queue.Intake, d.pipes, d.log.With("component", "ingest")); err != nil {
		return err
	}
	if e := d.cfg.MQTT.Embedded; e.Listen != "" || e.TLS.Cert != "" {
		if d.pub.Broker, err = mqtt.NewBroker(e, d.ingester, d.cfg.DeviceID, d.log); err != nil {
			return err
		}
	}
	if d.cfg.MQTT.External.URL != "" {
		if d.pub.Client, err = mqtt.NewClient(d.cfg.MQTT.External, d.ingester, d.cfg.DeviceID, d.log); err != nil {
			return err
		}
	}
	return nil
}

func (d *daemon) openOps(context.Context) error {
	d.sampler = hw.NewSampler(hw.Options{StateDir: d.cfg.StateDir})
	d.gov = governor.New(d.cfg.Governors, d.sampler, &throttle{eng: d.eng, queue: d.queue}, d.log.With("component", "governor"))
	d.coll = telemetry.NewCollector(telemetry.Source{DeviceID: d.cfg.DeviceID, Sampler: d.sampler, Engine: d.eng,
		Jobs: d.queue, Store: d.st, Governor: d.gov, Started: d.started, Components: d.sup.Status})
	if d.cfg.Metrics.Listen != "" {
		var err error
		if d.metrics, err = telemetry.NewMetricsServer(d.cfg.Metrics.Listen, d.coll); err != nil {
			return err
		}
	}
	return nil
}

func (d *daemon) openAPI(context.Context) error {
	var reload func() ([]string, error)
	if d.opts.ConfigPath != "" {
		reload = d.reloadPipelines
	}
	var err error
	d.srv, err = api.New(api.Deps{
		Config: d.cfg, Engine: d.eng, Registry: d.reg, Store: d.st, Jobs: d.queue, Pipelines: d.pipes,
		ReloadPipelines: reload, Logger: d.log, Device: deviceInfo(d.cfg, d.prof, d.started, d.sup), Audit: d.audit,
		Hardware: d.prof, Governor: d.gov, Uplink: d.up, Updater: d.updater,
	})
	return err
}

// reloadPipelines rereads the config file's pipelines; on error the
// running ones stay.
func (d *daemon) reloadPipelines() ([]string, error) {
	fresh, err := config.Load(d.opts.ConfigPath)
	if err != nil {
		return nil, err
	}
	names, err := d.pipes.SetLocal(fresh.Pipelines)
	if err != nil {
		return nil, err
	}
	d.log.Info("pipelines reloaded", "pipelines", names)
	return names, nil
}

// restore brings the device back to its release: an update that keeps
// crashing the daemon is rolled back before any model loads, so the old
// release loads instead; then the configured models load and the active
// release's are put back.
func (d *daemon) restore(ctx context.Context) error {
	if d.updater != nil {
		if err := d.updater.Boot(ctx); err != nil {
			return fmt.Errorf("fleet update boot: %w", err)
		}
	}
	loadAtStart(ctx, d.eng, d.reg, d.audit, d.log)
	if d.applier != nil {
		if err := d.applier.Restore(ctx); err != nil {
			d.log.Error("restore the fleet release", "err", err)
		}
	}
	d.audit.Record(ctx, "daemon.start", "emberd", nil, map[string]any{"version": buildinfo.Version, "boot": d.st.Boot(),
		"audit_key": audit.PublicKeyString(d.audit.PublicKey())})
	return nil
}
