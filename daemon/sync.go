package daemon

import (
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/daemon/engine"
	"github.com/ember-edge/ember/daemon/release"
	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/hw"
	"github.com/ember-edge/ember/sync/fleet"
	"github.com/ember-edge/ember/sync/uplink"
)

// uplinkOutbox is the store as the uplink sees it (an uplink.Outbox and
// uplink.Confirmer).
type uplinkOutbox struct{ st *store.Store }

func (o uplinkOutbox) PendingRecords(p, max int) ([]uplink.Record, error) {
	rs, err := o.st.PendingRecords(p, max)
	out := make([]uplink.Record, len(rs))
	for i, r := range rs {
		out[i] = uplink.Record(r)
	}
	return out, err
}

func (o uplinkOutbox) MarkSynced(p int, seq uint64) error { return o.st.MarkSynced(p, seq) }

func (o uplinkOutbox) Cursors(p int) (uint64, uint64, error) { return o.st.Cursors(p) }

func (o uplinkOutbox) MarkConfirmed(p int, seq uint64) (uint64, error) {
	return o.st.MarkConfirmed(p, seq)
}

func (o uplinkOutbox) Rewind(p int, to uint64) (uint64, error) { return o.st.Rewind(p, to) }

func (o uplinkOutbox) SyncBacklog() (uplink.Backlog, error) {
	b, err := o.st.SyncBacklog()
	return uplink.Backlog(b), err
}

// newUplink builds the uplink when one is configured.
func newUplink(cfg *config.Config, st *store.Store, log *slog.Logger) (*uplink.Uplink, error) {
	if cfg.Uplink.URL == "" {
		return nil, nil
	}
	opts, err := uplink.FromConfig(cfg.Uplink, cfg.Redact, cfg.DeviceID)
	if err != nil {
		return nil, err
	}
	opts.Outbox, opts.Settings, opts.SettingsNotFound, opts.Logger = uplinkOutbox{st}, st, store.ErrNotFound, log
	up, err := uplink.New(opts)
	if err != nil {
		return nil, err
	}
	st.OnAppend(up.Poke)
	return up, nil
}

// newUpdater builds the fleet updater when trusted keys or a root key
// are configured.
func newUpdater(cfg *config.Config, st *store.Store, up *uplink.Uplink, app *release.Applier, prof *hw.Profile, aud fleet.Auditor, log *slog.Logger) (*fleet.Updater, error) {
	if (len(cfg.Fleet.TrustedKeys) == 0 && cfg.Fleet.RootKey == "") || up == nil {
		return nil, nil
	}
	keys, err := fleet.LoadTrustedKeys(cfg.Fleet.TrustedKeys, cfg.Dir())
	if err != nil {
		return nil, err
	}
	var root ed25519.PublicKey
	if cfg.Fleet.RootKey != "" {
		if root, err = fleet.LoadPublicKey(cfg.Fleet.RootKey, cfg.Dir()); err != nil {
			return nil, fmt.Errorf("fleet.root_key: %w", err)
		}
	}
	return fleet.New(fleet.Options{
		Fleet: cfg.Uplink.Fleet, Device: cfg.DeviceID, Dir: filepath.Join(cfg.StateDir, "fleet"), Keys: keys,
		RootKey: root, MaxVersionJump: cfg.Fleet.MaxVersionJump, AllowHTTP: !cfg.Fleet.RequireHTTPS,
		Store: fleet.SettingsStore(st, store.ErrNotFound), Link: up.Link(), Activator: app, Checker: app,
		Hardware: fleet.Hardware{MemoryBytes: prof.MemoryBytes}, AllowedLicenses: cfg.Fleet.AllowedLicenses,
		KeepVersions: cfg.Fleet.KeepVersions, MaxBootAttempts: cfg.Fleet.MaxBootAttempts,
		Download: fleet.DownloadOptions{RateLimit: int64(cfg.Fleet.Bandwidth)},
		Auditor:  aud, Logger: log.With("component", "fleet"),
	})
}

// modelSpec gives a model file the engine settings of the config entry of
// the same name, if there is one.
func modelSpec(cfg *config.Config) func(name, path string) engine.ModelSpec {
	return func(name, path string) engine.ModelSpec {
		spec := engine.ModelSpec{Name: name, Path: path}
		for _, m := range cfg.Models {
			if m.Name == name {
				spec.Threads, spec.Context = m.Threads, m.Context
			}
		}
		return spec
	}
}
