package engine

import (
	"cmp"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/ember-edge/ember/daemon/inference"
	"github.com/ember-edge/ember/daemon/llamacpp"
)

// Options configure an Engine. Zero values take the defaults noted.
type Options struct {
	// LibDir holds the llama.cpp libraries; see package llamacpp.
	LibDir string
	// Verbose passes llama.cpp's own logging through to stderr.
	Verbose bool
	// Threads used for decoding by default. Callers pass the number of
	// physical (performance) cores: more threads than that made generation
	// hundreds of times slower on a 2-core box. 0 means runtime.NumCPU().
	Threads int
	// ContextCap bounds a derived context length (the model's trained
	// length, otherwise); callers derive it from RAM. 0 means 4096.
	ContextCap int
	// Context, when not 0, is the context length for every model that sets
	// none itself.
	Context int
	// Parallel is the number of sequences decoded together per model. 0
	// means 1.
	Parallel int
	// BatchSize is the most prompt tokens evaluated per step. 0 means 512.
	BatchSize int
	// GPULayers offloads that many layers when a GPU backend is present.
	GPULayers int
	// QueueSize bounds the requests waiting per model. 0 means 8.
	QueueSize int
	// MaxTokens is a request's default max_tokens. 0 means 256.
	MaxTokens int
	// MaxPromptBytes refuses larger prompts before tokenizing. 0 means
	// 256 KiB.
	MaxPromptBytes int
	// StreamInterval is the least time between two pieces streamed to a
	// caller; text produced meanwhile is sent as one piece. 0 sends every
	// token's text as soon as it is decoded.
	StreamInterval time.Duration
	// MemoryReserve is kept free when admitting a model load.
	MemoryReserve uint64
	// AvailableMemory reports the bytes that can be allocated now; nil
	// reads the system's available memory.
	AvailableMemory func() (uint64, error)
	// Logger receives the engine's logs; nil discards them.
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	o.Threads = cmp.Or(o.Threads, runtime.NumCPU())
	o.ContextCap = cmp.Or(o.ContextCap, 4096)
	o.Parallel = cmp.Or(o.Parallel, 1)
	o.BatchSize = cmp.Or(o.BatchSize, 512)
	o.QueueSize = cmp.Or(o.QueueSize, 8)
	o.MaxTokens = cmp.Or(o.MaxTokens, 256)
	o.MaxPromptBytes = cmp.Or(o.MaxPromptBytes, 256<<10)
	if o.AvailableMemory == nil {
		o.AvailableMemory = systemAvailableMemory
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Engine holds the loaded models. It is safe for concurrent use.
type Engine struct {
	opts Options

	mu     sync.Mutex
	models map[string]*Model
}

// New loads the llama.cpp libraries and returns an empty engine.
func New(opts Options) (*Engine, error) {
	opts.setDefaults()
	if err := llamacpp.Load(opts.LibDir, llamacpp.Options{Verbose: opts.Verbose}); err != nil {
		return nil, err
	}
	return &Engine{opts: opts, models: map[string]*Model{}}, nil
}

// ModelSpec names a model file and how to run it.
type ModelSpec struct {
	Name string
	Path string
	// Threads and Context override the engine's values when not 0.
	Threads int
	Context int
}

// Load validates and loads a model, and starts its scheduler.
func (e *Engine) Load(spec ModelSpec) (*Model, error) {
	e.mu.Lock()
	if _, ok := e.models[spec.Name]; ok {
		e.mu.Unlock()
		return nil, fmt.Errorf("load model %q: %w", spec.Name, ErrModelLoaded)
	}
	// Reserve the name so a concurrent Load of it fails fast, and load
	// outside the lock: a large model takes seconds.
	e.models[spec.Name] = nil
	e.mu.Unlock()

	m, err := loadModel(spec, &e.opts)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		delete(e.models, spec.Name)
		return nil, fmt.Errorf("load model %q: %w", spec.Name, err)
	}
	e.models[spec.Name] = m
	e.opts.Logger.Info("model loaded", "model", spec.Name, "path", spec.Path,
		"context", m.settings.Context, "threads", m.settings.Threads, "parallel", m.settings.Parallel)
	return m, nil
}

// Unload stops a model's scheduler, failing its queued requests with
// ErrUnloaded, and frees it.
func (e *Engine) Unload(name string) error {
	e.mu.Lock()
	m, ok := e.models[name]
	if ok && m != nil {
		delete(e.models, name)
	}
	e.mu.Unlock()
	if !ok || m == nil {
		return fmt.Errorf("unload model %q: %w", name, ErrModelNotLoaded)
	}
	m.close()
	e.opts.Logger.Info("model unloaded", "model", name)
	return nil
}

// Model returns the loaded model called name.
func (e *Engine) Model(name string) (*Model, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := e.models[name]
	if m == nil {
		return nil, fmt.Errorf("model %q: %w", name, ErrModelNotLoaded)
	}
	return m, nil
}

// Models returns the loaded models ordered by name.
func (e *Engine) Models() []*Model {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*Model, 0, len(e.models))
	for _, m := range e.models {
		if m != nil {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b *Model) int { return cmp.Compare(a.Name(), b.Name()) })
	return out
}

// Close unloads every model. The libraries stay loaded: they belong to the
// process.
func (e *Engine) Close() {
	for _, m := range e.Models() {
		_ = e.Unload(m.Name())
	}
}

// Stalled returns the models whose current decode step has run longer
// than limit: a hung llama.cpp call, for the systemd watchdog to act on.
func (e *Engine) Stalled(limit time.Duration) []string {
	var out []string
	for _, m := range e.Models() {
		if start := m.sched.stepStart.Load(); start != 0 && time.Since(time.Unix(0, start)) > limit {
			out = append(out, m.Name())
		}
	}
	return out
}

// Rename makes the loaded model from serve as to: requests for to go to
// it from now on. A model already loaded as to is unloaded, its queued
// requests failing with ErrUnloaded. It is how a checked update takes
// traffic without loading the model a second time.
func (e *Engine) Rename(from, to string) error {
	e.mu.Lock()
	m := e.models[from]
	if m == nil {
		e.mu.Unlock()
		return fmt.Errorf("rename model %q: %w", from, ErrModelNotLoaded)
	}
	old := e.models[to]
	delete(e.models, from)
	m.setName(to)
	e.models[to] = m
	e.mu.Unlock()
	if old != nil && old != m {
		old.close()
	}
	e.opts.Logger.Info("model renamed", "from", from, "to", to)
	return nil
}

// Slots is how many requests the loaded models can run at once: the sum
// of their sequence slots.
func (e *Engine) Slots() int {
	n := 0
	for _, m := range e.Models() {
		n += m.Settings().Parallel
	}
	return n
}

// LoadedNames returns the names of the loaded models.
func (e *Engine) LoadedNames() []string {
	ms := e.Models()
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name()
	}
	return out
}

// Generator returns the loaded model called name as an
// inference.Generator (what the job queue runs jobs on).
func (e *Engine) Generator(name string) (inference.Generator, error) {
	m, err := e.Model(name)
	if err != nil {
		return nil, err
	}
	return m, nil
}
