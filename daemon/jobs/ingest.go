package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/ember-edge/ember/daemon/engine"
	"github.com/ember-edge/ember/daemon/pipeline"
	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/daemon/topic"
)

// Ingest handles an MQTT message for every pipeline that matches its
// topic. It returns nil once every outcome is durable: a job queued (or
// merged into a queued one, or recognised as a redelivery), or a dead
// letter recorded for a message a pipeline cannot use or must reject, in
// which case the producer also gets an error message. An error means that
// for some pipeline nothing durable happened (a full disk, say): the
// broker must not acknowledge the message, so the producer retries.
func (m *Manager) Ingest(ctx context.Context, msg pipeline.Message) error {
	return m.IngestAsync(ctx, msg)()
}

// IngestAsync is Ingest in two steps: it queues the message's writes for
// the group commit and returns; the wait it returns finishes the work
// and returns what Ingest would. Messages queued one after another are
// committed in that order, so a broker connection can queue each message
// as it arrives and acknowledge each once its wait returns nil, in
// order, with many messages sharing a commit.
func (m *Manager) IngestAsync(ctx context.Context, msg pipeline.Message) (wait func() error) {
	var waits []func() error
	for _, p := range m.pipes.Load().list {
		if p.Matches(msg.Topic) {
			waits = append(waits, m.ingestOne(ctx, p, msg))
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

// Matches reports whether any pipeline takes messages on this topic.
func (m *Manager) Matches(t string) bool {
	for _, p := range m.pipes.Load().list {
		if p.Matches(t) {
			return true
		}
	}
	return false
}

// Filters returns the topic filters the pipelines subscribe to.
func (m *Manager) Filters() []string {
	var out []string
	for _, p := range m.pipes.Load().list {
		out = append(out, p.Config().Match)
	}
	return out
}

// ingestOne queues msg's job for pipeline p and returns the wait for its
// outcome. Refusals are recorded before it returns.
func (m *Manager) ingestOne(ctx context.Context, p *pipeline.Pipeline, msg pipeline.Message) (wait func() error) {
	done := func(err error) func() error { return func() error { return err } }
	cfg := p.Config()
	now := m.opts.Now()
	m.stats.ingested.Add(1)
	if *cfg.Priority < int(m.refuseBelow.Load()) {
		return done(m.refuse(ctx, p, msg, *m.refuseWhy.Load(), nil))
	}
	prep, err := p.Prepare(msg, m.opts.MaxPayload)
	var ie *pipeline.InputError
	if errors.As(err, &ie) {
		return done(m.refuse(ctx, p, msg, ie.Reason, err))
	}
	if err != nil {
		return done(err)
	}
	if over, err := m.st.Over(m.opts.Limits); err != nil {
		return done(err)
	} else if over {
		if cfg.Backlog.Overflow != string(store.OverflowDropOldest) {
			return done(m.refuse(ctx, p, msg, "the store is over its limits (store.max_records / store.max_bytes) and the pipeline's overflow policy is reject", store.ErrFull))
		}
		if _, err := m.st.PruneOutbox(m.opts.Limits, now, 256, nil); err != nil {
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
		DedupKey: prep.DedupKey, DedupWindow: m.opts.DedupWindow,
		CoalesceWindow: cfg.Coalesce.Window.D(),
		Backlog:        cfg.Backlog.Max, Overflow: store.Overflow(cfg.Backlog.Overflow),
	}
	if msg.QoS > 0 && msg.Client != "" {
		e.Redelivery = &store.Redelivery{Client: msg.Client, PacketID: msg.PacketID, Dup: msg.Dup, Hash: contentHash(msg)}
	}
	enqueued := m.st.EnqueueAsync(ctx, e, now)
	return func() error {
		res, err := enqueued()
		if errors.Is(err, store.ErrBacklogFull) {
			return m.refuse(ctx, p, msg, fmt.Sprintf("the pipeline's backlog is full (%d queued) and its overflow policy is reject", cfg.Backlog.Max), err)
		}
		if err != nil {
			return err
		}
		m.accepted(ctx, res, cfg.Name, *cfg.Priority, cfg.Classification, prep.Request.Reply)
		return nil
	}
}

// accepted counts an enqueue's outcome and tells watchers and the
// dispatcher.
func (m *Manager) accepted(ctx context.Context, res store.EnqueueResult, pipelineName string, priority int, class string, reply pipeline.Reply) {
	switch {
	case res.Duplicate:
		m.stats.duplicates.Add(1)
		return
	case res.Coalesced:
		m.stats.coalesced.Add(1)
	}
	if res.Dropped != 0 {
		m.droppedJob(ctx, res.Dropped, pipelineName, priority, class, reply)
	}
	m.events.publish(res.Job)
	m.poke()
}

// droppedJob writes the dead letter of a job that drop_oldest dropped.
func (m *Manager) droppedJob(ctx context.Context, id uint64, pipelineName string, priority int, class string, reply pipeline.Reply) {
	j, err := m.st.Job(id)
	if err != nil {
		return
	}
	dl := deadLetter{Kind: store.KindDeadLetter, DeviceID: m.opts.DeviceID, Pipeline: pipelineName, JobID: id, Reason: j.Error}
	rec, err := m.appendDeadLetter(ctx, dl, store.Record{Pipeline: pipelineName, JobID: id, Priority: priority, Classification: class})
	if err != nil {
		m.log.Error("record dropped job", "job", id, "err", err)
		return
	}
	m.stats.deadLetters.Add(1)
	m.events.publish(j)
	m.publish(reply.Broker, reply.ErrorTopic, rec.Data, 1, false, nil)
}

// refuse records a message a pipeline cannot take as a dead letter and
// tells the producer on the error topic. It returns nil once the dead
// letter is durable.
func (m *Manager) refuse(ctx context.Context, p *pipeline.Pipeline, msg pipeline.Message, reason string, cause error) error {
	cfg := p.Config()
	m.stats.rejected.Add(1)
	dl := deadLetter{
		Kind: store.KindDeadLetter, DeviceID: m.opts.DeviceID, Pipeline: cfg.Name, Reason: reason,
		Error: fmtErr(cause), Topic: msg.Topic,
	}
	setPayload(&dl, msg.Payload)
	rec, err := m.appendDeadLetter(ctx, dl, store.Record{Pipeline: cfg.Name, Priority: *cfg.Priority, Classification: cfg.Classification})
	if err != nil {
		return err
	}
	m.stats.deadLetters.Add(1)
	m.log.Warn("message refused", "pipeline", cfg.Name, "topic", msg.Topic, "reason", reason, "err", cause)
	m.publish(msg.Broker, p.ErrorTopic(msg.Topic), rec.Data, 1, false, nil)
	return nil
}

// maxDeadPayload bounds the payload kept in a dead letter.
const maxDeadPayload = 64 << 10

func setPayload(dl *deadLetter, payload []byte) {
	if len(payload) > maxDeadPayload {
		payload = payload[:maxDeadPayload]
	}
	if utf8.Valid(payload) {
		dl.Payload = string(payload)
	} else {
		dl.PayloadB64 = payload
	}
}

func (m *Manager) appendDeadLetter(ctx context.Context, dl deadLetter, rec store.Record) (store.Record, error) {
	rec.Kind, rec.DeviceID = store.KindDeadLetter, m.opts.DeviceID
	return m.st.Append(ctx, rec, func(r *store.Record) error {
		dl.Seq, dl.CreatedAt = r.Seq, r.CreatedAt
		var err error
		r.Data, err = encodeJSON(dl)
		return err
	}, m.opts.Now())
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

// DirectRequest is the payload of ember/v1/<device>/infer/<model>.
type DirectRequest struct {
	ID       string           `json:"id"`
	Prompt   string           `json:"prompt"`
	Messages []engine.Message `json:"messages"`
	Raw      bool             `json:"raw"`
	Params   struct {
		pipeline.Params
		MaxTokens int `json:"max_tokens"`
	} `json:"params"`
	Output  pipeline.Output `json:"output"`
	ReplyTo string          `json:"reply_to"`
}

// DirectPipeline names jobs from the direct request topic.
const DirectPipeline = "infer"

// IngestRequest handles a message on the direct request topic. The reply
// goes to the MQTT 5 response topic (with its correlation data) when the
// request has one, else to reply_to, else to ember/v1/<device>/result/infer.
// A request that cannot be accepted is answered on the same topic with an
// error and recorded as a dead letter.
func (m *Manager) IngestRequest(ctx context.Context, msg pipeline.Message, model string) error {
	m.stats.ingested.Add(1)
	reply := pipeline.Reply{
		Broker: msg.Broker, Topic: "ember/v1/" + m.opts.DeviceID + "/result/" + DirectPipeline, QoS: 1,
		ErrorTopic: "ember/v1/" + m.opts.DeviceID + "/error/" + DirectPipeline, CorrelationData: msg.CorrelationData,
	}
	var dr DirectRequest
	err := decodeDirect(msg.Payload, &dr, m.opts.MaxPayload)
	// Even a request that fails validation is answered where it asked.
	replyTo := dr.ReplyTo
	if msg.ResponseTopic != "" {
		replyTo = msg.ResponseTopic
	}
	if replyTo != "" {
		if terr := topic.ValidName(replyTo); terr != nil {
			err = errors.Join(err, fmt.Errorf("reply topic: %w", terr))
		} else {
			reply.Topic, reply.ErrorTopic = replyTo, replyTo
		}
	}
	if err == nil && dr.Output.Format == "json" {
		_, err = m.schemas.get(dr.Output.Schema)
	}
	if err != nil {
		m.stats.rejected.Add(1)
		dl := deadLetter{Kind: store.KindDeadLetter, DeviceID: m.opts.DeviceID, Pipeline: DirectPipeline,
			Reason: "the request is malformed", Error: err.Error(), Topic: msg.Topic, RequestID: dr.ID}
		setPayload(&dl, msg.Payload)
		rec, aerr := m.appendDeadLetter(ctx, dl, store.Record{Pipeline: DirectPipeline, Priority: directPriority})
		if aerr != nil {
			return aerr
		}
		m.stats.deadLetters.Add(1)
		m.publish(reply.Broker, reply.ErrorTopic, rec.Data, 1, false, reply.CorrelationData)
		return nil
	}
	if model == "_" || model == "default" {
		model = ""
	}
	req := pipeline.Request{
		Model: model, Messages: dr.Messages, Raw: dr.Raw, MaxTokens: dr.Params.MaxTokens,
		Params: dr.Params.Params, Output: dr.Output, Reply: reply, Topic: msg.Topic, RequestID: dr.ID,
	}
	if dr.Prompt != "" {
		req.Prompt = []engine.Segment{{Text: dr.Prompt, Data: true}}
	}
	e := store.Enqueue{}
	if dr.ID != "" {
		e.DedupKey, e.DedupWindow = DirectPipeline+"\x00"+dr.ID, m.opts.DedupWindow
	}
	if msg.QoS > 0 && msg.Client != "" {
		e.Redelivery = &store.Redelivery{Client: msg.Client, PacketID: msg.PacketID, Dup: msg.Dup, Hash: contentHash(msg)}
	}
	_, err = m.enqueue(ctx, req, DirectPipeline, msg.Broker+":"+msg.Topic, directPriority, e)
	return err
}

// directPriority is the priority of direct and gRPC requests: above
// routine pipelines (5), below alarms configured higher.
const directPriority = 6

func decodeDirect(payload []byte, dr *DirectRequest, maxPayload int) error {
	if maxPayload > 0 && len(payload) > maxPayload {
		return fmt.Errorf("payload is %d bytes, over the limit of %d", len(payload), maxPayload)
	}
	if !utf8.Valid(payload) {
		return errors.New("payload is not valid UTF-8")
	}
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dr); err != nil {
		*dr = DirectRequest{}
		return fmt.Errorf("payload is not a valid request: %w", err)
	}
	if (dr.Prompt == "") == (len(dr.Messages) == 0) {
		return errors.New("give exactly one of prompt and messages")
	}
	if dr.Output.Format != "" && dr.Output.Format != "text" && dr.Output.Format != "json" {
		return fmt.Errorf("output.format %q is not text or json", dr.Output.Format)
	}
	if dr.Params.MaxTokens < 0 {
		return errors.New("params.max_tokens must not be negative")
	}
	return nil
}

// Submit queues a request durably (gRPC JobService.Submit). requestID,
// when set, deduplicates within the dedup window.
func (m *Manager) Submit(ctx context.Context, req pipeline.Request, priority int) (store.Job, error) {
	if req.Output.Format == "json" {
		if _, err := m.schemas.get(req.Output.Schema); err != nil {
			return store.Job{}, fmt.Errorf("%w: output schema: %w", engine.ErrInvalidRequest, err)
		}
	}
	if len(req.Prompt) == 0 && len(req.Messages) == 0 {
		return store.Job{}, fmt.Errorf("%w: give a prompt or messages", engine.ErrInvalidRequest)
	}
	e := store.Enqueue{}
	if req.RequestID != "" {
		e.DedupKey, e.DedupWindow = "grpc\x00"+req.RequestID, m.opts.DedupWindow
	}
	id, err := m.enqueue(ctx, req, "grpc", "grpc", priority, e)
	if err != nil {
		return store.Job{}, err
	}
	return m.st.Job(id)
}

func (m *Manager) enqueue(ctx context.Context, req pipeline.Request, pipelineName, source string, priority int, e store.Enqueue) (uint64, error) {
	data, err := req.Encode()
	if err != nil {
		return 0, err
	}
	e.Job = store.Job{Pipeline: pipelineName, Source: source, Priority: priority, Model: req.Model, Request: data}
	res, err := m.st.Enqueue(ctx, e, m.opts.Now())
	if err != nil {
		return 0, err
	}
	m.accepted(ctx, res, pipelineName, priority, store.ClassShared, req.Reply)
	return res.ID, nil
}
