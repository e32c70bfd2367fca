package jobs

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/ember-edge/ember/daemon/pipeline"
	"github.com/ember-edge/ember/daemon/store"
)

// Intake turns messages and requests into durable jobs, or into dead
// letters when they cannot become one. Its methods are safe for
// concurrent use.
type Intake struct {
	*core
	// wake tells the dispatcher a job is queued.
	wake func()

	// refuseBelow is set by the disk governor: pipelines with a lower
	// priority refuse new messages, with refuseWhy.
	refuseBelow atomic.Int32
	refuseWhy   atomic.Pointer[string]
}

// RefuseBelow makes pipelines with a priority below p refuse new
// messages, with reason (0: none): the disk governor's low-space mode.
func (in *Intake) RefuseBelow(p int, reason string) {
	in.refuseWhy.Store(&reason)
	in.refuseBelow.Store(int32(p))
}

// Ingest handles an MQTT message for every pipeline that matches its
// topic. It returns nil once every outcome is durable: a job queued (or
// merged into a queued one, or recognised as a redelivery), or a dead
// letter recorded for a message a pipeline cannot use or must reject, in
// which case the producer also gets an error message. An error means that
// for some pipeline nothing durable happened (a full disk, say): the
// broker must not acknowledge the message, so the producer retries.
func (in *Intake) Ingest(ctx context.Context, msg pipeline.Message) error {
	return in.IngestAsync(ctx, msg)()
}

// IngestAsync is Ingest in two steps: it queues the message's writes for
// the group commit and returns; the wait it returns finishes the work
// and returns what Ingest would. Messages queued one after another are
// committed in that order, so a broker connection can queue each message
// as it arrives and acknowledge each once its wait returns nil, in
// order, with many messages sharing a commit.
func (in *Intake) IngestAsync(ctx context.Context, msg pipeline.Message) (wait func() error) {
	var waits []func() error
	for _, p := range in.pipes.Snapshot().List() {
		if p.Matches(msg.Topic) {
			waits = append(waits, in.ingestOne(ctx, p, msg))
		}
	}
	return func() error {
		var errs []error
		for _, w := range waits {
			if err := w(); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
}

// ingestOne queues msg's job for pipeline p and returns the wait for its
// outcome. Refusals are recorded before it returns.
func (in *Intake) ingestOne(ctx context.Context, p *pipeline.Pipeline, msg pipeline.Message) (wait func() error) {
	done := func(err error) func() error { return func() error { return err } }
	cfg := p.Config()
	now := in.opts.Now()
	in.stats.ingested.Add(1)
	if *cfg.Priority < int(in.refuseBelow.Load()) {
		return done(in.refuse(ctx, p, msg, *in.refuseWhy.Load(), nil))
	}
	prep, err := p.Prepare(msg, in.opts.MaxPayload)
	var ie *pipeline.InputError
	if errors.As(err, &ie) {
		return done(in.refuse(ctx, p, msg, ie.Reason, err))
	}
	if err != nil {
		return done(err)
	}
	if g := prep.Request.Guard; g != nil {
		in.log.Warn("message flagged by the guard", "pipeline", cfg.Name, "topic", msg.Topic, "score", g.Score, "matched", g.Matched)
	}
	if over, err := in.st.Over(in.opts.Limits); err != nil {
		return done(err)
	} else if over {
		if cfg.Backlog.Overflow != string(store.OverflowDropOldest) {
			return done(in.refuse(ctx, p, msg, "the store is over its limits (store.max_records / store.max_bytes) and the pipeline's overflow policy is reject", store.ErrFull))
		}
		if _, err := in.st.PruneOutbox(in.opts.Limits, now, 256, nil); err != nil {
			return done(err)
		}
	}
	reqJSON, err := prep.Request.Encode()
	if err != nil {
		return done(err)
	}
	e := store.Enqueue{
		Job: store.Job{
			Pipeline: cfg.Name, Source: msg.Broker + ":" + msg.Topic, Priority: *cfg.Priority,
			Model: prep.Request.Model, Request: reqJSON, Coalesce: prep.CoalesceKey,
		},
		DedupKey: prep.DedupKey, DedupWindow: in.opts.DedupWindow,
		CoalesceWindow: cfg.Coalesce.Window.D(),
		Backlog:        cfg.Backlog.Max, Overflow: store.Overflow(cfg.Backlog.Overflow),
	}
	e.Redelivery = redelivery(msg)
	enqueued := in.st.EnqueueAsync(ctx, e, now)
	return func() error {
		res, err := enqueued()
		if errors.Is(err, store.ErrBacklogFull) {
			return in.refuse(ctx, p, msg, fmt.Sprintf("the pipeline's backlog is full (%d queued) and its overflow policy is reject", cfg.Backlog.Max), err)
		}
		if err != nil {
			return err
		}
		in.accepted(ctx, res, cfg.Name, *cfg.Priority, prep.Request.Reply)
		return nil
	}
}

// redelivery identifies a QoS 1 message on its connection, so that a
// redelivery of an acknowledged message is recognised.
func redelivery(msg pipeline.Message) *store.Redelivery {
	if msg.QoS == 0 || msg.Client == "" {
		return nil
	}
	return &store.Redelivery{Client: msg.Client, PacketID: msg.PacketID, Dup: msg.Dup, Hash: contentHash(msg)}
}

// accepted counts an enqueue's outcome and tells watchers and the
// dispatcher.
func (in *Intake) accepted(ctx context.Context, res store.EnqueueResult, pipelineName string, priority int, reply pipeline.Reply) {
	switch {
	case res.Duplicate:
		in.stats.duplicates.Add(1)
		return
	case res.Coalesced:
		in.stats.coalesced.Add(1)
	}
	if res.Dropped != 0 {
		in.droppedJob(ctx, res.Dropped, pipelineName, priority, reply)
	}
	in.events.publish(res.Job)
	in.wake()
}

// droppedJob writes the dead letter of a job that drop_oldest dropped.
// It keeps the classification the dropped job was accepted with.
func (in *Intake) droppedJob(ctx context.Context, id uint64, pipelineName string, priority int, reply pipeline.Reply) {
	j, err := in.st.Job(id)
	if err != nil {
		return
	}
	req, _ := pipeline.DecodeRequest(j.Request) // unreadable: local
	dl := deadLetter{Kind: store.KindDeadLetter, DeviceID: in.opts.DeviceID, Pipeline: pipelineName, JobID: id, Reason: j.Error}
	rec, err := in.appendDeadLetter(ctx, dl, store.Record{Pipeline: pipelineName, JobID: id, Priority: priority, Classification: req.Class()})
	if err != nil {
		in.log.Error("record dropped job", "job", id, "err", err)
		return
	}
	in.events.publish(j)
	in.publish(reply.Broker, reply.ErrorTopic, rec.Data, 1, false, nil)
}

// refuse records a message a pipeline cannot take as a dead letter and
// tells the producer on the error topic. It returns nil once the dead
// letter is durable.
func (in *Intake) refuse(ctx context.Context, p *pipeline.Pipeline, msg pipeline.Message, reason string, cause error) error {
	cfg := p.Config()
	in.stats.rejected.Add(1)
	dl := deadLetter{
		Kind: store.KindDeadLetter, DeviceID: in.opts.DeviceID, Pipeline: cfg.Name, Reason: reason,
		Error: errString(cause), Topic: msg.Topic,
	}
	setPayload(&dl, msg.Payload, cfg.DeadLetterPayload == "raw")
	rec, err := in.appendDeadLetter(ctx, dl, store.Record{Pipeline: cfg.Name, Priority: *cfg.Priority, Classification: classOf(cfg.Classification)})
	if err != nil {
		return err
	}
	what := "message refused"
	if errors.Is(cause, pipeline.ErrQuarantined) {
		// The guard's reason names the rules that matched; the model
		// never saw the message.
		what = "message quarantined by the guard"
	}
	in.log.Warn(what, "pipeline", cfg.Name, "topic", msg.Topic, "reason", reason, "err", cause)
	in.publish(msg.Broker, p.ErrorTopic(msg.Topic), rec.Data, 1, false, nil)
	return nil
}

func contentHash(msg pipeline.Message) [32]byte {
	h := sha256.New()
	h.Write([]byte(msg.Topic))
	h.Write([]byte{0})
	h.Write(msg.Payload)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// classOf is a configured classification, failing closed.
func classOf(c string) string {
	return pipeline.Request{Classification: c}.Class()
}
