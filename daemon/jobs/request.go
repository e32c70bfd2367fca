package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/ember-edge/ember/daemon/inference"
	"github.com/ember-edge/ember/daemon/pipeline"
	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/daemon/topic"
)

// DirectRequest is the payload of ember/v1/<device>/infer/<model>.
type DirectRequest struct {
	ID       string              `json:"id"`
	Prompt   string              `json:"prompt"`
	Messages []inference.Message `json:"messages"`
	Raw      bool                `json:"raw"`
	Params   struct {
		pipeline.Params
		MaxTokens int `json:"max_tokens"`
	} `json:"params"`
	Output  pipeline.Output `json:"output"`
	ReplyTo string          `json:"reply_to"`
}

// DirectPipeline names jobs from the direct request topic.
const DirectPipeline = "infer"

// DefaultRequestPriority is the priority of direct requests unless
// Options.RequestPriority says otherwise: above routine pipelines (5),
// below alarms configured higher.
const DefaultRequestPriority = 6

func (in *Intake) requestPriority() int {
	if p := in.opts.RequestPriority; p != nil {
		return *p
	}
	return DefaultRequestPriority
}

// IngestRequest handles a message on the direct request topic. The reply
// goes to the MQTT 5 response topic (with its correlation data) when the
// request has one, else to reply_to, else to ember/v1/<device>/result/infer.
// A reply topic must be one the requester may publish to itself, or under
// ember/v1/<device>/reply/<its client id>/ (see replyRefusal): emberd
// publishes with its own rights, which must not lend the requester any.
// A request that cannot be accepted is answered on its reply topic with
// an error and recorded as a dead letter; one whose reply topic is
// refused is answered on the error topic, without its payload.
func (in *Intake) IngestRequest(ctx context.Context, msg pipeline.Message, model string) error {
	in.stats.ingested.Add(1)
	reply := pipeline.Reply{
		Broker: msg.Broker, Topic: topic.Result(in.opts.DeviceID, DirectPipeline), QoS: 1,
		ErrorTopic: topic.Error(in.opts.DeviceID, DirectPipeline), CorrelationData: msg.CorrelationData,
	}
	var dr DirectRequest
	err := decodeDirect(msg.Payload, &dr, in.opts.MaxPayload, in.opts.RequestMaxTokens)
	// Even a request that fails validation is answered where it asked.
	replyTo := dr.ReplyTo
	if msg.ResponseTopic != "" {
		replyTo = msg.ResponseTopic
	}
	if replyTo != "" {
		if rerr := replyRefusal(in.opts.DeviceID, msg, replyTo); rerr != nil {
			return in.rejectRequest(ctx, msg, dr.ID, reply, "the reply topic is not allowed", rerr, false)
		}
		reply.Topic, reply.ErrorTopic = replyTo, replyTo
	}
	if err == nil && dr.Output.Format == "json" {
		_, err = in.schemas.get(dr.Output.Schema)
	}
	if err != nil {
		return in.rejectRequest(ctx, msg, dr.ID, reply, "the request is malformed", err, true)
	}
	if model == "_" || model == "default" {
		model = ""
	}
	maxTokens := dr.Params.MaxTokens
	if maxTokens == 0 {
		maxTokens = in.opts.RequestMaxTokens
	}
	req := pipeline.Request{
		Model: model, Messages: dr.Messages, Raw: dr.Raw, MaxTokens: maxTokens,
		Params: dr.Params.Params, Output: dr.Output, Reply: reply, Topic: msg.Topic, RequestID: dr.ID,
		Classification: in.directClass(),
	}
	if dr.Prompt != "" {
		req.Prompt = []inference.Segment{{Text: dr.Prompt, Data: true}}
	}
	e := store.Enqueue{Redelivery: redelivery(msg)}
	if dr.ID != "" {
		e.DedupKey, e.DedupWindow = DirectPipeline+"\x00"+dr.ID, in.opts.DedupWindow
	}
	_, err = in.enqueue(ctx, req, DirectPipeline, msg.Broker+":"+msg.Topic, in.requestPriority(), e)
	return err
}

// rejectRequest records a refused request as a dead letter and answers on
// reply.ErrorTopic. The payload is kept in the record and the answer only
// when echo is set: a refusal for the reply topic goes to ember's own
// error topic, where the requester must not be able to place text of its
// choosing.
func (in *Intake) rejectRequest(ctx context.Context, msg pipeline.Message, id string, reply pipeline.Reply, reason string, cause error, echo bool) error {
	in.stats.rejected.Add(1)
	dl := deadLetter{Kind: store.KindDeadLetter, DeviceID: in.opts.DeviceID, Pipeline: DirectPipeline,
		Reason: reason, Error: cause.Error(), Topic: msg.Topic, RequestID: id}
	if echo {
		setPayload(&dl, msg.Payload, false)
	}
	rec, err := in.appendDeadLetter(ctx, dl, store.Record{Pipeline: DirectPipeline, Priority: in.requestPriority(),
		Classification: in.directClass()})
	if err != nil {
		return err
	}
	in.publish(reply.Broker, reply.ErrorTopic, rec.Data, 1, false, reply.CorrelationData)
	return nil
}

// MaxReplyTopic is the longest reply topic a request may name, in bytes.
const MaxReplyTopic = 512

// replyRefusal says why a request's reply may not go to t, or nil. A
// reply may go:
//   - under ember/v1/<device>/reply/<client id>/, where <client id> is the
//     requester's own on the embedded broker (a client id with '/', '+'
//     or '#' in it has no such topics), and any single level on an
//     external broker, which does not say who published; its ACL decides
//     who may read there;
//   - elsewhere outside ember/v1/<device>/, to a topic the requester may
//     publish to itself, which only the embedded broker can tell.
//
// Names starting with '$' (the broker's own) and every other topic of
// this device are refused.
func replyRefusal(deviceID string, msg pipeline.Message, t string) error {
	switch {
	case len(t) > MaxReplyTopic:
		return fmt.Errorf("reply topic is %d bytes, over the limit of %d", len(t), MaxReplyTopic)
	case !utf8.ValidString(t):
		return errors.New("reply topic is not valid UTF-8")
	case strings.HasPrefix(t, "$"):
		return fmt.Errorf("reply topic %q is a broker topic ($…)", t)
	}
	if err := topic.ValidName(t); err != nil {
		return fmt.Errorf("reply topic: %w", err)
	}
	root := topic.ReplyRoot(deviceID)
	if rest, ok := strings.CutPrefix(t, root); ok {
		cid, sub, _ := strings.Cut(rest, "/")
		switch {
		case cid == "" || sub == "":
			return fmt.Errorf("reply topic %q: want %s<client id>/<topic>", t, root)
		case msg.Broker == "external":
			return nil
		case msg.Client == "" || strings.ContainsAny(msg.Client, "/+#"):
			return fmt.Errorf("reply topic %q: the requester's client id %q cannot name a topic level", t, msg.Client)
		case cid != msg.Client:
			return fmt.Errorf("reply topic %q is under another client's reply topics; use %s", t, topic.ReplyPrefix(deviceID, msg.Client))
		}
		return nil
	}
	if t == topic.Device(deviceID) || strings.HasPrefix(t, topic.Device(deviceID)+"/") {
		return fmt.Errorf("reply topic %q is one of emberd's own topics; use %s<client id>/…", t, root)
	}
	if msg.MayPublish == nil {
		return fmt.Errorf("reply topic %q: emberd cannot see the requester's rights on this broker, so replies go only under %s<client id>/ or to the default result topic", t, root)
	}
	if !msg.MayPublish(t) {
		return fmt.Errorf("reply topic %q: the requester may not publish there itself", t)
	}
	return nil
}

func decodeDirect(payload []byte, dr *DirectRequest, maxPayload, maxTokens int) error {
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
	if maxTokens > 0 && dr.Params.MaxTokens > maxTokens {
		return fmt.Errorf("params.max_tokens %d is over this device's limit for requests (mqtt.requests.max_tokens: %d)", dr.Params.MaxTokens, maxTokens)
	}
	return nil
}

// Submit queues a request durably (gRPC JobService.Submit). requestID,
// when set, deduplicates within the dedup window.
func (in *Intake) Submit(ctx context.Context, req pipeline.Request, priority int) (store.Job, error) {
	if req.Output.Format == "json" {
		if _, err := in.schemas.get(req.Output.Schema); err != nil {
			return store.Job{}, fmt.Errorf("%w: output schema: %w", inference.ErrInvalidRequest, err)
		}
	}
	if len(req.Prompt) == 0 && len(req.Messages) == 0 {
		return store.Job{}, fmt.Errorf("%w: give a prompt or messages", inference.ErrInvalidRequest)
	}
	if req.Classification == "" {
		req.Classification = in.directClass()
	}
	e := store.Enqueue{}
	if req.RequestID != "" {
		e.DedupKey, e.DedupWindow = "grpc\x00"+req.RequestID, in.opts.DedupWindow
	}
	id, err := in.enqueue(ctx, req, "grpc", "grpc", priority, e)
	if err != nil {
		return store.Job{}, err
	}
	return in.st.Job(id)
}

func (in *Intake) enqueue(ctx context.Context, req pipeline.Request, pipelineName, source string, priority int, e store.Enqueue) (uint64, error) {
	data, err := req.Encode()
	if err != nil {
		return 0, err
	}
	e.Job = store.Job{Pipeline: pipelineName, Source: source, Priority: priority, Model: req.Model, Request: data}
	res, err := in.st.Enqueue(ctx, e, in.opts.Now())
	if err != nil {
		return 0, err
	}
	in.accepted(ctx, res, pipelineName, priority, req.Reply)
	return res.ID, nil
}

// directClass is the classification of direct MQTT requests and gRPC
// submissions: configured, local unless the config says shared.
func (in *Intake) directClass() string { return classOf(in.opts.DirectClassification) }
