package jobs

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ember-edge/ember/daemon/inference"
	"github.com/ember-edge/ember/daemon/models"
	"github.com/ember-edge/ember/daemon/pipeline"
	"github.com/ember-edge/ember/daemon/store"
)

// Inference is the engine as the queue sees it (*engine.Engine
// implements it).
type Inference interface {
	// Slots is how many requests the loaded models can run at once.
	Slots() int
	// LoadedNames returns the names of the loaded models.
	LoadedNames() []string
	// Generator returns the loaded model called name; an error wrapping
	// inference.ErrModelNotLoaded when there is none.
	Generator(name string) (inference.Generator, error)
}

// Publisher sends results and errors back over MQTT. broker is the
// broker the request came from ("embedded" or "external"); empty means
// every connected one.
type Publisher interface {
	Publish(broker, topic string, payload []byte, qos byte, retain bool, correlation []byte) error
}

// Deps are what the queue works with.
type Deps struct {
	Store     *store.Store
	Pipelines *pipeline.Set
	// Inference runs jobs; nil queues them without running any (an
	// ingest-only queue, as broker tests use).
	Inference Inference
	Models    *models.Registry
	// Publisher may be nil: results are then only recorded.
	Publisher Publisher
	// Auditor records each job's inference metadata (*audit.Log); nil
	// records none.
	Auditor Auditor
}

// Auditor records the metadata of an inference: who asked (actor), the
// model and the prompt tokens, never the prompt. It returns nil when
// inference auditing is off.
type Auditor interface {
	Inference(ctx context.Context, action, actor, model string, promptTokens int, err error, extra map[string]any) error
}

// Options configure the queue.
type Options struct {
	DeviceID    string
	Limits      store.Limits
	DedupWindow time.Duration
	// MaxPayload refuses larger messages (dead letter).
	MaxPayload int
	// DirectClassification classifies direct MQTT requests and gRPC
	// submissions, which no pipeline classifies: "shared", or local (the
	// default: what nobody classified does not leave the device).
	DirectClassification string
	// RequestPriority is the priority of direct requests' jobs
	// (mqtt.requests.priority); nil means DefaultRequestPriority.
	RequestPriority *int
	// RequestMaxTokens caps a direct request's max_tokens and is what a
	// request asking for none gets (mqtt.requests.max_tokens); 0: no cap.
	RequestMaxTokens int
	// Concurrency bounds jobs running at once; 0 follows the engine: one
	// per sequence slot of the loaded models.
	Concurrency int
	Logger      *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Queue is the job queue's parts, wired together by New.
type Queue struct {
	Intake     *Intake
	Dispatcher *Dispatcher
	Events     *Events
	Maintainer *Maintainer
	c          *core
}

// New wires the queue's parts. Dispatcher.Run starts running jobs.
func New(d Deps, opts Options) *Queue {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Pipelines == nil {
		d.Pipelines = pipeline.NewSet(opts.DeviceID)
	}
	c := &core{st: d.Store, pipes: d.Pipelines, pub: d.Publisher, opts: opts, log: opts.Logger, events: newEvents()}
	exec := &Executor{core: c, inf: d.Inference, reg: d.Models, audit: d.Auditor}
	disp := newDispatcher(c, exec)
	in := &Intake{core: c, wake: disp.Poke}
	return &Queue{Intake: in, Dispatcher: disp, Events: c.events, Maintainer: &Maintainer{core: c, running: disp.Running, wake: disp.Poke}, c: c}
}

// Stats are the queue's counters.
type Stats struct {
	Ingested, Duplicates, Coalesced, Rejected, DeadLetters, Done, Failed uint64
	Running                                                              int
}

// Stats returns the counters.
func (q *Queue) Stats() Stats {
	s := &q.c.stats
	return Stats{
		Ingested: s.ingested.Load(), Duplicates: s.duplicates.Load(), Coalesced: s.coalesced.Load(),
		Rejected: s.rejected.Load(), DeadLetters: s.deadLetters.Load(), Done: s.done.Load(),
		Failed: s.failed.Load(), Running: q.Dispatcher.RunningCount(),
	}
}

// core is what the parts share: the store, the pipelines, the outbound
// side (publishing, dead letters, events) and the counters.
type core struct {
	st      *store.Store
	pipes   *pipeline.Set
	pub     Publisher
	opts    Options
	log     *slog.Logger
	events  *Events
	schemas schemaCache
	stats   counters
}

type counters struct {
	ingested, duplicates, coalesced, rejected, deadLetters, done, failed atomic.Uint64
}

// publish sends a message, logging (not failing) on error: the outbox
// holds the record either way.
func (c *core) publish(broker, topic string, payload []byte, qos byte, retain bool, correlation []byte) {
	if c.pub == nil || topic == "" {
		return
	}
	if err := c.pub.Publish(broker, topic, payload, qos, retain, correlation); err != nil {
		c.log.Warn("publish failed; the outbox keeps the record", "topic", topic, "err", err)
	}
}
