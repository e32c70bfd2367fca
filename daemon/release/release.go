// Package release applies fleet releases to the running daemon: it is the
// daemon's side of sync/fleet (its Activator and Checker). A release's
// models are loaded under staging names while their checks run, and take
// traffic only on Commit; its pipeline bundle replaces the fleet's
// pipelines only on Commit.
//
// The package keeps no record of its own. What is active and what is
// staged is read from the fleet updater's one update record
// (fleet.ReadState: State.Serving, State.Staged), which the updater
// writes before it calls any method here, so a restart at any moment
// restores what that record names. The model registry's records of
// fleet models (store models/, source "fleet") follow it: Commit and
// Rollback rewrite them, and the updater redoes either after a crash.
package release

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/daemon/engine"
	"github.com/ember-edge/ember/daemon/models"
	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/sync/fleet"
)

// Options are the daemon parts a release touches.
type Options struct {
	Store  *store.Store
	Engine *engine.Engine
	// SetPipelines installs the fleet's pipelines (nil: none), merged
	// with the config's by the caller.
	SetPipelines func(fleetPipelines []config.Pipeline) error
	// CheckPipelines says whether SetPipelines would take a bundle (it
	// compiles, and declassifies no local pipeline) without installing
	// it: a release is refused while it is staged, never at its commit.
	CheckPipelines func(fleetPipelines []config.Pipeline) error
	// Spec gives the engine settings for a model file.
	Spec   func(name, path string) engine.ModelSpec
	Logger *slog.Logger
}

// Applier implements fleet.Activator and fleet.Checker.
type Applier struct {
	opts  Options
	fleet fleet.StateStore
	// openErr is the migration's error, returned by every method: the
	// daemon must not guess what it serves.
	openErr error
	mu      sync.Mutex
}

// New returns an Applier over opts.Store. It migrates a database written
// when this package kept its own record ("release/state") into the fleet
// update record first (migrate); a failure to is returned by every
// method.
func New(opts Options) *Applier {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Applier{opts: opts, fleet: fleet.SettingsStore(opts.Store, store.ErrNotFound)}
	if err := migrate(opts.Store, a.fleet, opts.Logger); err != nil {
		a.openErr = fmt.Errorf("release: %w", err)
	}
	return a
}

// load returns the fleet update record.
func (a *Applier) load() (fleet.State, error) {
	if a.openErr != nil {
		return fleet.State{}, a.openErr
	}
	st, err := fleet.ReadState(a.fleet)
	if err != nil {
		return fleet.State{}, fmt.Errorf("release: %w", err)
	}
	return st, nil
}

// stagingName is the name a model runs under while its release is checked.
func stagingName(name string, version int64) string { return fmt.Sprintf("%s@v%d", name, version) }

// Restore brings the engine and pipelines to the update record at start:
// the serving release's models and pipelines, and a staged release's
// models under their staging names. Call it after the config's models
// are loaded (and after the updater's Boot, which may roll back).
func (a *Applier) Restore(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	st, err := a.load()
	if err != nil {
		return err
	}
	if err := a.serve(st.Serving()); err != nil {
		return err
	}
	if staged := st.Staged(); staged != nil {
		return a.stage(*staged)
	}
	return nil
}

// Activate loads rel's models under staging names and validates its
// pipelines. Nothing takes traffic until Commit. The updater persisted
// rel as its target (phase activating) before calling, which is what
// stages it again after a restart.
func (a *Applier) Activate(ctx context.Context, rel fleet.Release) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.openErr != nil {
		return a.openErr
	}
	return a.stage(rel)
}

// stage loads rel's models under staging names (idempotent) and checks
// its pipeline bundle compiles.
func (a *Applier) stage(rel fleet.Release) error {
	for _, art := range rel.Artifacts {
		switch art.Kind {
		case fleet.KindModel:
			name := stagingName(art.Name, rel.Version)
			if _, err := a.opts.Engine.Model(name); err == nil {
				continue
			}
			spec := a.opts.Spec(art.Name, art.Path)
			spec.Name = name
			if _, err := a.opts.Engine.Load(spec); err != nil {
				return fmt.Errorf("stage model %q of release %d: %w", art.Name, rel.Version, err)
			}
		case fleet.KindPipelines:
			ps, err := readBundle(art.Path)
			if err == nil && a.opts.CheckPipelines != nil {
				err = a.opts.CheckPipelines(ps)
			}
			if err != nil {
				return fmt.Errorf("stage pipelines of release %d: %w", rel.Version, err)
			}
		}
	}
	return nil
}

// Commit makes rel the active release: the registry names its models,
// the staged models take their names (and the traffic), its pipelines
// install. The updater persisted phase committing before calling and
// calls again after a restart until the commit is recorded.
func (a *Applier) Commit(ctx context.Context, rel fleet.Release) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.openErr != nil {
		return a.openErr
	}
	if err := a.registerModels(rel); err != nil {
		return err
	}
	for _, art := range rel.Artifacts {
		if art.Kind != fleet.KindModel {
			continue
		}
		staged := stagingName(art.Name, rel.Version)
		if _, err := a.opts.Engine.Model(staged); err == nil {
			if err := a.opts.Engine.Rename(staged, art.Name); err != nil {
				return err
			}
		}
	}
	return a.serve(rel)
}

// Rollback makes to the active release again (version 0: the config's
// own models and pipelines), dropping the staged release the rollback
// abandons (the update record's target, persisted with phase
// rolling_back before the call).
func (a *Applier) Rollback(ctx context.Context, to fleet.Release) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	st, err := a.load()
	if err != nil {
		return err
	}
	if leaving := st.Leaving(); leaving != nil {
		for _, art := range leaving.Artifacts {
			if art.Kind == fleet.KindModel {
				_ = a.opts.Engine.Unload(stagingName(art.Name, leaving.Version))
			}
		}
	}
	if err := a.registerModels(to); err != nil {
		return err
	}
	// Models of the rolled-back release run again from their kept files.
	for _, art := range to.Artifacts {
		if art.Kind == fleet.KindModel {
			if err := a.replace(art.Name, art.Path); err != nil {
				return err
			}
		}
	}
	return a.serve(to)
}

// Retire has nothing to free: a release leaving the device is neither
// active nor staged, so no model runs from its files.
func (a *Applier) Retire(ctx context.Context, rel fleet.Release) error { return nil }

// registerModels records rel's models in the registry, with version and
// license, and removes every other fleet model record (those of the
// release rel replaces, and of one whose commit a crash cut short),
// unloading it. It is idempotent: the updater calls Commit and Rollback
// again after a restart.
func (a *Applier) registerModels(rel fleet.Release) error {
	keep := map[string]bool{}
	for _, art := range rel.Artifacts {
		if art.Kind != fleet.KindModel {
			continue
		}
		keep[art.Name] = true
		fi, err := os.Stat(art.Path)
		if err != nil {
			return err
		}
		if err := a.opts.Store.PutModel(store.ModelRecord{
			Name: art.Name, Path: art.Path, SHA256: art.SHA256, Size: fi.Size(), License: art.License,
			Version: fmt.Sprint(rel.Version), Source: models.SourceFleet, AddedAt: time.Now().UTC(),
		}); err != nil {
			return err
		}
	}
	recs, err := a.opts.Store.Models()
	if err != nil {
		return err
	}
	for _, rec := range recs {
		if rec.Source == models.SourceFleet && !keep[rec.Name] {
			if err := a.opts.Store.DeleteModel(rec.Name); err != nil {
				return err
			}
			_ = a.opts.Engine.Unload(rec.Name)
		}
	}
	return nil
}

// replace loads path as name, taking over from whatever runs as name.
func (a *Applier) replace(name, path string) error {
	if m, err := a.opts.Engine.Model(name); err == nil && m.Path() == path {
		return nil
	}
	tmp := name + "@loading"
	_ = a.opts.Engine.Unload(tmp)
	spec := a.opts.Spec(name, path)
	spec.Name = tmp
	if _, err := a.opts.Engine.Load(spec); err != nil {
		return fmt.Errorf("load model %q: %w", name, err)
	}
	return a.opts.Engine.Rename(tmp, name)
}

// serve makes the engine and pipelines match the active release rel.
func (a *Applier) serve(rel fleet.Release) error {
	var pipes []config.Pipeline
	for _, art := range rel.Artifacts {
		switch art.Kind {
		case fleet.KindModel:
			if err := a.replace(art.Name, art.Path); err != nil {
				return err
			}
		case fleet.KindPipelines:
			ps, err := readBundle(art.Path)
			if err != nil {
				return err
			}
			pipes = append(pipes, ps...)
		}
	}
	if a.opts.SetPipelines != nil {
		return a.opts.SetPipelines(pipes)
	}
	return nil
}

// readBundle reads a pipelines artifact: YAML with a list of pipelines,
// or a document with a pipelines key, as in the config.
func readBundle(path string) ([]config.Pipeline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return config.ParsePipelines(data)
}

// Run implements fleet.Checker: it runs a check's prompt greedily on the
// release's staged model.
func (a *Applier) Run(ctx context.Context, rel fleet.Release, c fleet.Check) (fleet.CheckResult, error) {
	name := c.Model
	var models []string
	for _, art := range rel.Artifacts {
		if art.Kind == fleet.KindModel {
			models = append(models, art.Name)
		}
	}
	if name == "" && len(models) == 1 {
		name = models[0]
	}
	var m *engine.Model
	var err error
	switch {
	case name == "":
		loaded := a.opts.Engine.Models()
		if len(loaded) == 0 {
			return fleet.CheckResult{}, errors.New("no model to run the check on")
		}
		m = loaded[0]
	default:
		if m, err = a.opts.Engine.Model(stagingName(name, rel.Version)); err != nil {
			if m, err = a.opts.Engine.Model(name); err != nil {
				return fleet.CheckResult{}, fmt.Errorf("check model %q: %w", name, err)
			}
		}
	}
	var out strings.Builder
	res, err := m.Generate(ctx, engine.Request{Prompt: c.Prompt, MaxTokens: c.MaxTokens, Sampling: engine.Sampling{Temperature: 0}},
		func(s string) error { out.WriteString(s); return nil })
	if err != nil {
		return fleet.CheckResult{}, err
	}
	return fleet.CheckResult{Output: out.String(), TokensPerSecond: res.TokensPerSecond(), FirstTokenLatency: res.TimeToFirstToken}, nil
}

// Pipelines returns the active release's pipelines, for a config reload
// to merge.
func (a *Applier) Pipelines() ([]config.Pipeline, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st, err := a.load()
	if err != nil {
		return nil, err
	}
	var out []config.Pipeline
	for _, art := range st.Serving().Artifacts {
		if art.Kind == fleet.KindPipelines {
			ps, err := readBundle(art.Path)
			if err != nil {
				return nil, err
			}
			out = append(out, ps...)
		}
	}
	return out, nil
}

var (
	_ fleet.Activator = (*Applier)(nil)
	_ fleet.Checker   = (*Applier)(nil)
)
