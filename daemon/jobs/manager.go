package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/daemon/engine"
	"github.com/ember-edge/ember/daemon/models"
	"github.com/ember-edge/ember/daemon/pipeline"
	"github.com/ember-edge/ember/daemon/store"
)

// Publisher sends results and errors back over MQTT. broker is the
// broker the request came from ("embedded" or "external"); empty means
// every connected one.
type Publisher interface {
	Publish(broker, topic string, payload []byte, qos byte, retain bool, correlation []byte) error
}

// Options configure a Manager.
type Options struct {
	DeviceID    string
	Limits      store.Limits
	DedupWindow time.Duration
	// MaxPayload refuses larger messages (dead letter).
	MaxPayload int
	// Concurrency bounds jobs running at once; 0 follows the engine: one
	// per sequence slot of the loaded models.
	Concurrency int
	Logger      *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Manager owns the job queue. Run drives it; the other methods are safe
// for concurrent use.
type Manager struct {
	st   *store.Store
	eng  *engine.Engine
	reg  *models.Registry
	pub  Publisher
	opts Options
	log  *slog.Logger

	pipes     atomic.Pointer[pipelineSet]
	wake      chan struct{}
	events    *broadcaster
	schemas   schemaCache
	limiterMu sync.Mutex
	limiters  map[string]*tokenBucket

	runMu   sync.Mutex
	running map[uint64]context.CancelCauseFunc

	// holdBelow and refuseBelow are set by the governors: jobs below the
	// first priority wait; messages below the second are refused.
	holdBelow   atomic.Int32
	refuseBelow atomic.Int32
	refuseWhy   atomic.Pointer[string]

	stats counters
}

type counters struct {
	ingested, duplicates, coalesced, rejected, deadLetters, done, failed atomic.Uint64
}

// New returns a Manager; SetPipelines installs the pipelines and Run
// starts dispatching.
func New(st *store.Store, eng *engine.Engine, reg *models.Registry, pub Publisher, opts Options) *Manager {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{
		st: st, eng: eng, reg: reg, pub: pub, opts: opts, log: opts.Logger,
		wake: make(chan struct{}, 1), events: newBroadcaster(),
		limiters: map[string]*tokenBucket{}, running: map[uint64]context.CancelCauseFunc{},
	}
	m.pipes.Store(&pipelineSet{})
	return m
}

// pipelineSet is an immutable set of compiled pipelines, swapped whole on
// reload so that every message sees one consistent set.
type pipelineSet struct {
	list   []*pipeline.Pipeline
	byName map[string]*pipeline.Pipeline
}

// CompilePipelines compiles definitions, returning every problem found.
func CompilePipelines(defs []config.Pipeline, deviceID string) ([]*pipeline.Pipeline, error) {
	var out []*pipeline.Pipeline
	var errs []error
	for _, d := range defs {
		p, err := pipeline.Compile(d, pipeline.Options{DeviceID: deviceID})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, p)
	}
	return out, errors.Join(errs...)
}

// SetPipelines replaces the pipelines. Jobs already queued keep the
// request they were accepted with.
func (m *Manager) SetPipelines(ps []*pipeline.Pipeline) {
	set := &pipelineSet{list: ps, byName: map[string]*pipeline.Pipeline{}}
	for _, p := range ps {
		set.byName[p.Name()] = p
	}
	m.pipes.Store(set)
	m.limiterMu.Lock()
	clear(m.limiters)
	m.limiterMu.Unlock()
	m.poke()
}

// Pipelines returns the active pipelines.
func (m *Manager) Pipelines() []*pipeline.Pipeline { return m.pipes.Load().list }

// Pipeline returns the active pipeline called name.
func (m *Manager) Pipeline(name string) (*pipeline.Pipeline, bool) {
	p, ok := m.pipes.Load().byName[name]
	return p, ok
}

// poke wakes the dispatcher.
func (m *Manager) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Stats are the Manager's counters.
type Stats struct {
	Ingested, Duplicates, Coalesced, Rejected, DeadLetters, Done, Failed uint64
	Running                                                              int
}

// Stats returns the counters.
func (m *Manager) Stats() Stats {
	m.runMu.Lock()
	running := len(m.running)
	m.runMu.Unlock()
	return Stats{
		Ingested: m.stats.ingested.Load(), Duplicates: m.stats.duplicates.Load(), Coalesced: m.stats.coalesced.Load(),
		Rejected: m.stats.rejected.Load(), DeadLetters: m.stats.deadLetters.Load(), Done: m.stats.done.Load(),
		Failed: m.stats.failed.Load(), Running: running,
	}
}

// deadLetter is what a dead-letter record and error message hold.
type deadLetter struct {
	Kind       string         `json:"kind"`
	Seq        uint64         `json:"seq"`
	DeviceID   string         `json:"device_id"`
	Pipeline   string         `json:"pipeline,omitempty"`
	JobID      uint64         `json:"job_id,omitempty"`
	Reason     string         `json:"reason"`
	Error      string         `json:"error,omitempty"`
	Topic      string         `json:"topic,omitempty"`
	Payload    string         `json:"payload,omitempty"`
	PayloadB64 []byte         `json:"payload_base64,omitempty"`
	Output     string         `json:"output,omitempty"`
	Input      map[string]any `json:"input,omitempty"`
	RequestID  string         `json:"request_id,omitempty"`
	CreatedAt  time.Time      `json:"created_at"`
}

func encodeJSON(v any) (json.RawMessage, error) {
	b, err := json.Marshal(v)
	return b, err
}

// publish sends a message, logging (not failing) on error: the outbox
// holds the record either way.
func (m *Manager) publish(broker, topic string, payload []byte, qos byte, retain bool, correlation []byte) {
	if m.pub == nil || topic == "" {
		return
	}
	if err := m.pub.Publish(broker, topic, payload, qos, retain, correlation); err != nil {
		m.log.Warn("publish failed; the outbox keeps the record", "topic", topic, "err", err)
	}
}

var errShutdown = errors.New("shutting down")

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return fmt.Sprint(err)
}

// HoldBelow holds back queued jobs with a priority below p (0: none):
// the thermal governor's pause of low-priority pipelines.
func (m *Manager) HoldBelow(p int) {
	m.holdBelow.Store(int32(p))
	m.poke()
}

// RefuseBelow makes pipelines with a priority below p refuse new
// messages, with reason (0: none): the disk governor's low-space mode.
func (m *Manager) RefuseBelow(p int, reason string) {
	m.refuseWhy.Store(&reason)
	m.refuseBelow.Store(int32(p))
}
