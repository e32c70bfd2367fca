package models

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/daemon/store"
)

// ErrUnknownModel is returned for a name the registry does not hold.
var ErrUnknownModel = errors.New("unknown model")

// ErrExists is returned when importing under a name already in use.
var ErrExists = errors.New("model name already in use")

// Source says where a model entry comes from.
const (
	SourceConfig = "config"
	SourceStore  = "store"
)

// SourceFleet is the Source of a store record written by a fleet release
// (daemon/release) for a model of the active release.
const SourceFleet = "fleet"

// Entry is a model the daemon can load.
type Entry struct {
	Name    string
	Path    string
	SHA256  string // empty until hashed
	Size    int64
	Source  string
	Default bool
	License string
	Version string
	AddedAt time.Time
	// Threads and Context are the config's overrides for this model.
	Threads int
	Context int
	// Load says whether the daemon loads it at start.
	Load bool
}

// Registry merges the config's models with the store's. A config entry
// wins over a store entry of the same name: the config is what the
// operator wrote. The exception is the file: when a committed fleet
// release serves a model under a config entry's name, the entry reports
// the release's artifact (path, sha256, size), which is what runs.
type Registry struct {
	st       *store.Store
	cfg      []config.Model
	storeDir string

	mu sync.Mutex // serialises imports and hashing of one file at a time
}

// New returns a registry over the config's models and the store.
func New(st *store.Store, cfg []config.Model, storeDir string) *Registry {
	return &Registry{st: st, cfg: cfg, storeDir: storeDir}
}

// StoreDir is where imported model files live.
func (r *Registry) StoreDir() string { return r.storeDir }

// List returns every model, ordered by name.
func (r *Registry) List() ([]Entry, error) {
	recs, err := r.st.Models()
	if err != nil {
		return nil, err
	}
	byName := map[string]Entry{}
	fleet := map[string]bool{}
	for _, rec := range recs {
		byName[rec.Name] = fromRecord(rec)
		fleet[rec.Name] = rec.Source == SourceFleet
	}
	for _, m := range r.cfg {
		e := Entry{
			Name: m.Name, Path: m.Path, Source: SourceConfig, Default: m.Default,
			Threads: m.Threads, Context: m.Context, Load: m.LoadAtStart(),
		}
		if st, err := os.Stat(m.Path); err == nil {
			e.Size = st.Size()
			if h, err := r.st.FileHash(m.Path); err == nil && h.Size == st.Size() && h.ModTime == st.ModTime().UnixNano() {
				e.SHA256 = h.SHA256
			}
		}
		if prev, ok := byName[m.Name]; ok {
			e.License, e.Version, e.AddedAt = prev.License, prev.Version, prev.AddedAt
			if fleet[m.Name] {
				// A fleet release replaced the config's file under its
				// name: the release's artifact is what runs, so it is
				// what the entry names. The config keeps its settings.
				e.Path, e.SHA256, e.Size = prev.Path, prev.SHA256, prev.Size
			}
		}
		byName[m.Name] = e
	}
	out := make([]Entry, 0, len(byName))
	for _, e := range byName {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Entry) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// Get returns the model called name.
func (r *Registry) Get(name string) (Entry, error) {
	all, err := r.List()
	if err != nil {
		return Entry{}, err
	}
	for _, e := range all {
		if e.Name == name {
			return e, nil
		}
	}
	return Entry{}, fmt.Errorf("model %q: %w", name, ErrUnknownModel)
}

// Default returns the default model: the one marked default (in the config
// first, then the store), else the only model.
func (r *Registry) Default() (Entry, bool) {
	all, err := r.List()
	if err != nil {
		return Entry{}, false
	}
	for _, src := range []string{SourceConfig, SourceStore} {
		for _, e := range all {
			if e.Default && e.Source == src {
				return e, true
			}
		}
	}
	if len(all) == 1 {
		return all[0], true
	}
	return Entry{}, false
}

// HashConfigModels computes and caches the sha256 of each config model
// whose cached hash is missing or stale. stop is checked between files so
// that a shutdown is not held up by a large model.
func (r *Registry) HashConfigModels(stop <-chan struct{}, progress func(path string, done, total int64)) error {
	for _, m := range r.cfg {
		select {
		case <-stop:
			return nil
		default:
		}
		if _, err := r.hashFile(m.Path, stop, progress); err != nil {
			return fmt.Errorf("hash model %q: %w", m.Name, err)
		}
	}
	return nil
}

// hashFile returns the sha256 of path, from the cache when it is fresh.
func (r *Registry) hashFile(path string, stop <-chan struct{}, progress func(string, int64, int64)) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if h, err := r.st.FileHash(path); err == nil && h.Size == st.Size() && h.ModTime == st.ModTime().UnixNano() {
		return h.SHA256, nil
	}
	sum, err := hashPath(path, stop, func(done int64) {
		if progress != nil {
			progress(path, done, st.Size())
		}
	})
	if err != nil {
		return "", err
	}
	err = r.st.PutFileHash(path, store.FileHash{Size: st.Size(), ModTime: st.ModTime().UnixNano(), SHA256: sum})
	return sum, err
}

func fromRecord(rec store.ModelRecord) Entry {
	return Entry{
		Name: rec.Name, Path: rec.Path, SHA256: rec.SHA256, Size: rec.Size, Source: SourceStore,
		Default: rec.Default, License: rec.License, Version: rec.Version, AddedAt: rec.AddedAt,
	}
}

// SHA256 returns the sha256 of a model's file, hashing it (once: the hash
// is cached) when it is not known yet.
func (r *Registry) SHA256(name string) (string, error) {
	e, err := r.Get(name)
	if err != nil {
		return "", err
	}
	if e.SHA256 != "" {
		return e.SHA256, nil
	}
	return r.hashFile(e.Path, nil, nil)
}
