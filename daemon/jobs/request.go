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

// directPriority is the priority of direct and gRPC requests: above
// routine pipelines (5), below alarms configured higher.
const directPriority = 6

// IngestRequest handles a message on the direct request topic. The reply
// goes to the MQTT 5 response topic (with its correlation data) when the
// request has one, else to reply_to, else to ember/v1/<device>/result/infer.
// A request that cannot be accepted is answered on the same topic with an
// error and recorded as a dead letter.
func (in *Intake) IngestRequest(ctx context.Context, msg pipeline.Message, model string) error {
	in.stats.ingested.Add(1)
	reply := pipeline.Reply{
		Broker: msg.Broker, Topic: topic.Result(in.opts.DeviceID, DirectPipeline), QoS: 1,
		ErrorTopic: topic.Error(in.opts.DeviceID, DirectPipeline), CorrelationData: msg.CorrelationData,
	}
	var dr DirectRequest
	err := decodeDirect(msg.Payload, &dr, in.opts.MaxPayload)
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
		_, err = in.schemas.get(dr.Output.Schema)
	}
	if err != nil {
		in.stats.rejected.Add(1)
		dl := deadLetter{Kind: store.KindDeadLetter, DeviceID: in.opts.DeviceID, Pipeline: DirectPipeline,
			Reason: "the request is malformed", Error: err.Error(), Topic: msg.Topic, RequestID: dr.ID}
		setPayload(&dl, msg.Payload, false)
		rec, aerr := in.appendDeadLetter(ctx, dl, store.Record{Pipeline: DirectPipeline, Priority: directPriority,
			Classification: in.directClass()})
		if aerr != nil {
			return aerr
		}
		in.publish(reply.Broker, reply.ErrorTopic, rec.Data, 1, false, reply.CorrelationData)
		return nil
	}
	if model == "_" || model == "default" {
		model = ""
	}
	req := pipeline.Request{
		Model: model, Messages: dr.Messages, Raw: dr.Raw, MaxTokens: dr.Params.MaxTokens,
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
	_, err = in.enqueue(ctx, req, DirectPipeline, msg.Broker+":"+msg.Topic, directPriority, e)
	return err
}

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
