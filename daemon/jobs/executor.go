package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ember-edge/ember/daemon/inference"
	"github.com/ember-edge/ember/daemon/models"
	"github.com/ember-edge/ember/daemon/pipeline"
	"github.com/ember-edge/ember/daemon/pipeline/guard"
	"github.com/ember-edge/ember/daemon/store"
)

// Executor runs one started job to its end: done with a result, failed
// with a dead letter, back in the queue after a transient error, or
// cancelled.
type Executor struct {
	*core
	inf   Inference
	reg   *models.Registry
	audit Auditor
}

// Result is the message published for a finished job, and the data of
// its outbox record.
type Result struct {
	JobID       uint64          `json:"job_id"`
	Seq         uint64          `json:"seq"`
	Pipeline    string          `json:"pipeline"`
	DeviceID    string          `json:"device_id"`
	RequestID   string          `json:"request_id,omitempty"`
	Topic       string          `json:"topic,omitempty"`
	Output      json.RawMessage `json:"output"`
	Model       string          `json:"model"`
	ModelSHA256 string          `json:"model_sha256,omitempty"`
	CreatedAt   time.Time       `json:"created_at"`
	// ReceivedAt is when the job was accepted.
	ReceivedAt       time.Time      `json:"received_at"`
	Boot             uint64         `json:"boot"`
	FinishReason     string         `json:"finish_reason"`
	PromptTokens     int            `json:"prompt_tokens"`
	CompletionTokens int            `json:"completion_tokens"`
	DurationMS       int64          `json:"duration_ms"`
	Input            map[string]any `json:"input,omitempty"`
	// Guard is what the guard found in a message it flagged (its
	// pipeline's guard is flag): the output was made from data that reads
	// like instructions to the model.
	Guard *guard.Report `json:"guard,omitempty"`
}

// retryBackoff is how long a job waits after a transient failure (the
// model busy or not loaded yet); it doubles per attempt up to a minute.
func retryBackoff(attempts int) time.Duration {
	return min(time.Second<<min(attempts, 6), time.Minute)
}

// maxAttempts ends a job that keeps failing for transient reasons.
const maxAttempts = 20

// errCancelled is the cause of a job context cancelled by Cancel.
var errCancelled = errors.New("job cancelled")

func (x *Executor) run(ctx context.Context, j store.Job) {
	req, err := pipeline.DecodeRequest(j.Request)
	if err != nil {
		x.fail(ctx, j, req, "the stored request cannot be read", err, "")
		return
	}
	model, err := x.model(req.Model)
	switch {
	case err == nil:
	case inference.IsTransient(err):
		x.retry(ctx, j, err)
		return
	default:
		x.fail(ctx, j, req, "the model is unknown", err, "")
		return
	}
	out, res, err := x.infer(ctx, model, req)
	x.audited(ctx, j, req, model.Name(), res, err)
	switch {
	case err == nil:
	case ctx.Err() != nil:
		x.stopped(ctx, j)
		return
	case inference.IsTransient(err):
		x.retry(ctx, j, err)
		return
	default:
		x.fail(ctx, j, req, "inference failed", err, out)
		return
	}
	output, err := x.shape(req.Output, out)
	if err != nil {
		x.fail(ctx, j, req, "the output does not match the pipeline's output format", err, out)
		return
	}
	x.finish(ctx, j, req, model, output, res)
}

// audited records the job's inference metadata. A failure to write it
// is logged and counted by the audit log; the job goes on, since nobody
// waits on the call to be told (the gRPC calls fail instead).
func (x *Executor) audited(ctx context.Context, j store.Job, req pipeline.Request, model string, res inference.Result, err error) {
	if x.audit == nil {
		return
	}
	who := "mqtt"
	if req.Reply.Broker != "" {
		who += " " + req.Reply.Broker
	}
	if req.Topic != "" {
		who += " topic " + req.Topic
	}
	x.audit.Inference(ctx, "inference.job", who, model, res.PromptTokens, err, map[string]any{
		"job": j.ID, "pipeline": j.Pipeline, "attempt": j.Attempts, "completion_tokens": res.CompletionTokens})
}

// model resolves a request's model: its name, else the default, else the
// only loaded model. A model the registry does not know is a permanent
// failure; anything else (not loaded yet, the registry unreadable) may
// pass.
func (x *Executor) model(name string) (inference.Generator, error) {
	if name == "" {
		if def, ok := x.reg.Default(); ok {
			name = def.Name
		} else if loaded := x.inf.LoadedNames(); len(loaded) == 1 {
			name = loaded[0]
		} else {
			return nil, fmt.Errorf("no model named and no default model loaded: %w", inference.ErrModelNotLoaded)
		}
	}
	lm, err := x.inf.Generator(name)
	if err == nil {
		return lm, nil
	}
	if _, rerr := x.reg.Get(name); rerr != nil {
		if errors.Is(rerr, models.ErrUnknownModel) {
			return nil, rerr
		}
		return nil, inference.Temporary(rerr)
	}
	return nil, inference.Temporary(err)
}

// infer runs the request on the model and returns the text.
func (x *Executor) infer(ctx context.Context, lm inference.Generator, req pipeline.Request) (string, inference.Result, error) {
	er := inference.Request{MaxTokens: req.MaxTokens, Sampling: req.Params.Sampling(), Stop: req.Params.Stop}
	if req.Output.Format == "json" {
		s, err := x.schemas.get(req.Output.Schema)
		if err != nil {
			return "", inference.Result{}, fmt.Errorf("%w: output schema: %w", inference.ErrInvalidRequest, err)
		}
		er.Grammar = s.Grammar()
	}
	var text strings.Builder
	collect := func(s string) error { text.WriteString(s); return nil }
	var res inference.Result
	var err error
	switch {
	case len(req.Messages) > 0:
		res, err = lm.Chat(ctx, req.Messages, er, collect)
	case req.Raw:
		er.Segments = req.Prompt
		res, err = lm.Generate(ctx, er, collect)
	default:
		var msgs []inference.Message
		if req.System != "" {
			msgs = append(msgs, inference.Message{Role: "system", Content: req.System})
		}
		var user strings.Builder
		for _, s := range req.Prompt {
			user.WriteString(s.Text)
		}
		msgs = append(msgs, inference.Message{Role: "user", Content: user.String()})
		res, err = lm.Chat(ctx, msgs, er, collect)
	}
	return text.String(), res, err
}

// shape turns the generated text into the result's output: a JSON string
// for text, or the parsed object, validated against the schema, for json.
func (x *Executor) shape(o pipeline.Output, text string) (json.RawMessage, error) {
	if o.Format != "json" {
		return json.Marshal(text)
	}
	s, err := x.schemas.get(o.Schema)
	if err != nil {
		return nil, err
	}
	trimmed := strings.TrimSpace(text)
	if !json.Valid([]byte(trimmed)) {
		return nil, fmt.Errorf("not valid JSON (was it cut off by max_tokens?)")
	}
	if err := s.Validate([]byte(trimmed)); err != nil {
		return nil, err
	}
	return json.RawMessage(trimmed), nil
}

func (x *Executor) finish(ctx context.Context, j store.Job, req pipeline.Request, lm inference.Generator, output json.RawMessage, res inference.Result) {
	sum, _ := x.reg.SHA256(lm.Name())
	rec := store.Record{Kind: store.KindResult, DeviceID: x.opts.DeviceID, Pipeline: j.Pipeline, Priority: j.Priority,
		Classification: req.Class()}
	r, err := x.st.FinishJob(context.WithoutCancel(ctx), j.ID, rec, func(r *store.Record) error {
		var err error
		r.Data, err = json.Marshal(Result{
			JobID: j.ID, Seq: r.Seq, Pipeline: j.Pipeline, DeviceID: x.opts.DeviceID, RequestID: req.RequestID,
			Topic: req.Topic, Output: output, Model: lm.Name(), ModelSHA256: sum, CreatedAt: r.CreatedAt,
			ReceivedAt: j.CreatedAt, Boot: r.Boot, FinishReason: res.FinishReason.String(),
			PromptTokens: res.PromptTokens, CompletionTokens: res.CompletionTokens,
			DurationMS: res.Duration.Milliseconds(), Input: req.Input, Guard: req.Guard,
		})
		return err
	}, x.opts.Now())
	if err != nil {
		// A full disk, say: the job runs again later (the maintainer
		// requeues it), so its one result is written once there is room.
		x.log.Error("record job result", "job", j.ID, "err", err)
		return
	}
	x.stats.done.Add(1)
	if done, err := x.st.Job(j.ID); err == nil {
		x.events.publish(done)
	}
	x.publish(req.Reply.Broker, req.Reply.Topic, r.Data, req.Reply.QoS, req.Reply.Retain, req.Reply.CorrelationData)
}

// fail ends a job with a dead letter and reports it on the error topic.
func (x *Executor) fail(ctx context.Context, j store.Job, req pipeline.Request, reason string, cause error, output string) {
	dl := deadLetter{Kind: store.KindDeadLetter, DeviceID: x.opts.DeviceID, Pipeline: j.Pipeline, JobID: j.ID,
		Reason: reason, Error: errString(cause), Topic: req.Topic, Output: output, RequestID: req.RequestID}
	if req.Input != nil {
		dl.Input = req.Input
	}
	rec := store.Record{Kind: store.KindDeadLetter, DeviceID: x.opts.DeviceID, Pipeline: j.Pipeline, Priority: j.Priority,
		Classification: req.Class()}
	r, err := x.st.FailJob(context.WithoutCancel(ctx), j.ID, store.JobRunning, reason+": "+errString(cause), rec, func(r *store.Record) error {
		dl.Seq, dl.CreatedAt = r.Seq, r.CreatedAt
		var err error
		r.Data, err = json.Marshal(dl)
		return err
	}, x.opts.Now())
	if err != nil {
		x.log.Error("record job failure", "job", j.ID, "err", err)
		return
	}
	x.stats.failed.Add(1)
	x.stats.deadLetters.Add(1)
	x.log.Warn("job failed", "job", j.ID, "pipeline", j.Pipeline, "reason", reason, "err", cause)
	if failed, err := x.st.Job(j.ID); err == nil {
		x.events.publish(failed)
	}
	x.publish(req.Reply.Broker, req.Reply.ErrorTopic, r.Data, 1, false, req.Reply.CorrelationData)
}

// retry puts a job back for a transient reason, or fails it after too
// many attempts.
func (x *Executor) retry(ctx context.Context, j store.Job, cause error) {
	if j.Attempts >= maxAttempts {
		req, _ := pipeline.DecodeRequest(j.Request)
		x.fail(ctx, j, req, fmt.Sprintf("gave up after %d attempts", j.Attempts), cause, "")
		return
	}
	now := x.opts.Now()
	queued, err := x.st.RetryJob(context.WithoutCancel(ctx), j.ID, errString(cause), now.Add(retryBackoff(j.Attempts)), now)
	if err != nil {
		x.log.Error("requeue job", "job", j.ID, "err", err)
		return
	}
	x.log.Info("job will be retried", "job", j.ID, "attempt", j.Attempts, "err", cause)
	x.events.publish(queued)
}

// stopped handles a job whose context ended: cancelled by a caller (the
// job ends cancelled), or the daemon shutting down (it stays running in
// the store and is queued again at the next start).
func (x *Executor) stopped(ctx context.Context, j store.Job) {
	if !errors.Is(context.Cause(ctx), errCancelled) {
		return
	}
	cancelled, err := x.st.CancelRunningJob(context.WithoutCancel(ctx), j.ID, x.opts.Now())
	if err == nil {
		x.events.publish(cancelled)
	}
}
