package mqtt

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ember-edge/ember/daemon/jobs"
	"github.com/ember-edge/ember/daemon/pipeline"
	"github.com/ember-edge/ember/daemon/sparkplug"
)

// Ingester is what both brokers feed: it routes a message to the direct
// request handler or the pipelines, decoding Sparkplug B once for all.
type Ingester struct {
	intake *jobs.Intake
	pipes  *pipeline.Set
	sp     *sparkplug.Decoder
	log    *slog.Logger
	// rebirth asks an edge node to resend its birth certificate; it is
	// set by whichever broker delivered the message.
	rebirthMu   sync.Mutex
	lastRebirth map[string]time.Time
}

// NewIngester returns an Ingester that feeds intake the messages pipes
// wants.
func NewIngester(intake *jobs.Intake, pipes *pipeline.Set, log *slog.Logger) (*Ingester, error) {
	sp, err := sparkplug.NewDecoder(sparkplug.Options{})
	if err != nil {
		return nil, err
	}
	return &Ingester{intake: intake, pipes: pipes, sp: sp, log: log, lastRebirth: map[string]time.Time{}}, nil
}

// Handle ingests one message; nil means it may be acknowledged. rebirth,
// when set, is used to ask a Sparkplug edge node for a new birth
// certificate when its data cannot be decoded without one.
func (in *Ingester) Handle(ctx context.Context, msg pipeline.Message, rebirth func(topic string, payload []byte)) error {
	return in.HandleAsync(ctx, msg, rebirth)()
}

// HandleAsync is Handle in two steps, as jobs.Intake.IngestAsync: the
// message's writes are queued in order when it returns, and the wait
// returns what Handle would.
func (in *Ingester) HandleAsync(ctx context.Context, msg pipeline.Message, rebirth func(topic string, payload []byte)) (wait func() error) {
	if model, ok := in.pipes.RequestModel(msg.Topic); ok {
		err := in.intake.IngestRequest(ctx, msg, model)
		return func() error { return err }
	}
	if pipeline.IsSparkplug(msg.Topic) && in.pipes.Snapshot().Sparkplug() {
		spm, err := in.sp.Decode(msg.Topic, msg.Payload)
		msg.Sparkplug, msg.SparkplugErr = spm, err
		if err != nil && sparkplug.NeedsRebirth(err) && rebirth != nil {
			in.requestRebirth(msg.Topic, rebirth)
		}
		if spm != nil && spm.Gap != nil {
			in.log.Warn("Sparkplug messages lost", "topic", msg.Topic, "missed", spm.Gap.Missed())
		}
		if spm != nil && spm.Stale {
			return func() error { return nil } // the death of an earlier session, delivered late
		}
	}
	return in.intake.IngestAsync(ctx, msg)
}

// requestRebirth publishes a rebirth request for the edge node of topic,
// at most once per 30s per node, as a host application should.
func (in *Ingester) requestRebirth(topic string, publish func(string, []byte)) {
	t, err := sparkplug.ParseTopic(topic)
	if err != nil {
		return
	}
	key := t.Group + "/" + t.EdgeNode
	in.rebirthMu.Lock()
	if last, ok := in.lastRebirth[key]; ok && time.Since(last) < 30*time.Second {
		in.rebirthMu.Unlock()
		return
	}
	in.lastRebirth[key] = time.Now()
	if len(in.lastRebirth) > 4096 {
		clear(in.lastRebirth)
	}
	in.rebirthMu.Unlock()
	rt, payload, err := sparkplug.RebirthRequest(t, time.Now())
	if err != nil {
		return
	}
	in.log.Info("requesting a Sparkplug rebirth", "edge_node", key)
	publish(rt, payload)
}

// Filters are the topics ember must receive from an external broker.
func (in *Ingester) Filters() []string { return in.pipes.Filters() }

// Wants reports whether ember takes messages on this topic.
func (in *Ingester) Wants(t string) bool { return in.pipes.Wants(t) }
