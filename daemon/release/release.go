// Package release applies fleet releases to the running daemon: it is the
// daemon's side of sync/fleet (its Activator and Checker). A release's
// models are loaded under staging names while their checks run, and take
// traffic only on Commit; its pipeline bundle replaces the fleet's
// pipelines only on Commit. What is active is one record in the store,
// written before anything changes, so a restart restores the same state.
package release

import (
	"context"
	"encoding/json"
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

// stateKey is the settings key of the applied release.
const stateKey = "release/state"

// state is what the store holds about fleet releases.
type state struct {
	// Active is the committed release, serving traffic.
	Active fleet.Release `json:"active"`
	// Staged is a release activated but not committed: its models run
	// under staging names for the checks.
	Staged *fleet.Release `json:"staged,omitempty"`
}

// Options are the daemon parts a release touches.
type Options struct {
	Store  *store.Store
	Engine *engine.Engine
	// SetPipelines installs the fleet's pipelines (nil: none), merged
	// with the config's by the caller.
	SetPipelines func(fleetPipelines []config.Pipeline) error
	// Spec gives the engine settings for a model file.
	Spec   func(name, path string) engine.ModelSpec
	Logger *slog.Logger
}

// Applier implements fleet.Activator and fleet.Checker.
type Applier struct {
	opts Options
	mu   sync.Mutex
}

// New returns an Applier.
func New(opts Options) *Applier { return &Applier{opts: opts} }

func (a *Applier) load() (state, error) {
	var st state
	data, err := a.opts.Store.Setting(stateKey)
	if errors.Is(err, store.ErrNotFound) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(data, &st)
}

func (a *Applier) save(st state) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return a.opts.Store.SetSetting(stateKey, data)
}

// stagingName is the name a model runs under while its release is checked.
func stagingName(name string, version int64) string { return fmt.Sprintf("%s@v%d", name, version) }

// Restore brings the engine and pipelines to the stored state at start:
// the active release's models and pipelines, and a staged release's
// models under their staging names. Call it after the config's models
// are loaded.
func (a *Applier) Restore(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	st, err := a.load()
	if err != nil {
		return err
	}
	if err := a.serve(st.Active); err != nil {
		return err
	}
	if st.Staged != nil {
		return a.stage(*st.Staged)
	}
	return nil
}

// Activate records rel as staged, then loads its models under staging
// names and validates its pipelines. Nothing takes traffic until Commit.
func (a *Applier) Activate(ctx context.Context, rel fleet.Release) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	st, err := a.load()
	if err != nil {
		return err
	}
	st.Staged = &rel
	if err := a.save(st); err != nil {
		return err
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
			if _, err := readBundle(art.Path); err != nil {
				return fmt.Errorf("stage pipelines of release %d: %w", rel.Version, err)
			}
		}
	}
	return nil
}

// Commit makes rel the active release: the registry names its models,
// the staged models take their names (and the traffic), its pipelines
// install.
func (a *Applier) Commit(ctx context.Context, rel fleet.Release) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	st, err := a.load()
	if err != nil {
		return err
	}
	prev := st.Active
	st.Active, st.Staged = rel, nil
	if err := a.save(st); err != nil {
		return err
	}
	if err := a.registerModels(rel, prev); err != nil {
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
// own models and pipelines), dropping any staged one.
func (a *Applier) Rollback(ctx context.Context, to fleet.Release) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	st, err := a.load()
	if err != nil {
		return err
	}
	from, staged := st.Active, st.Staged
	st.Active, st.Staged = to, nil
	if err := a.save(st); err != nil {
		return err
	}
	if staged != nil {
		for _, art := range staged.Artifacts {
			if art.Kind == fleet.KindModel {
				_ = a.opts.Engine.Unload(stagingName(art.Name, staged.Version))
			}
		}
	}
	if err := a.registerModels(to, from); err != nil {
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
// license, and removes the fleet models of prev that rel does not have.
func (a *Applier) registerModels(rel, prev fleet.Release) error {
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
	for _, art := range prev.Artifacts {
		if art.Kind == fleet.KindModel && !keep[art.Name] {
			if err := a.opts.Store.DeleteModel(art.Name); err != nil {
				return err
			}
			_ = a.opts.Engine.Unload(art.Name)
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
	for _, art := range st.Active.Artifacts {
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
