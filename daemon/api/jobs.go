package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ember-edge/ember/daemon/engine"
	"github.com/ember-edge/ember/daemon/pipeline"
	"github.com/ember-edge/ember/daemon/store"
	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
)

type jobService struct {
	emberv1.UnimplementedJobServiceServer
	s *Server
}

var jobStates = map[store.JobState]emberv1.JobState{
	store.JobQueued: emberv1.JobState_JOB_STATE_QUEUED, store.JobRunning: emberv1.JobState_JOB_STATE_RUNNING,
	store.JobDone: emberv1.JobState_JOB_STATE_DONE, store.JobFailed: emberv1.JobState_JOB_STATE_FAILED,
	store.JobCancelled: emberv1.JobState_JOB_STATE_CANCELLED,
}

func jobStateFromPB(s emberv1.JobState) store.JobState {
	for k, v := range jobStates {
		if v == s {
			return k
		}
	}
	return ""
}

func jobPB(j store.Job) *emberv1.Job {
	return &emberv1.Job{
		Id: j.ID, Pipeline: j.Pipeline, Source: j.Source, Priority: int32(j.Priority), State: jobStates[j.State],
		CreatedAt: timestamppb.New(j.CreatedAt), UpdatedAt: timestamppb.New(j.UpdatedAt), Attempts: int32(j.Attempts),
		Error: j.Error, ResultSeq: j.ResultSeq, Merged: int32(j.Merged), RequestJson: string(j.Request),
	}
}

func (x *jobService) ready() error {
	if x.s.deps.Jobs == nil {
		return status.Error(codes.Unavailable, "the job queue is not running")
	}
	return nil
}

func (x *jobService) Submit(ctx context.Context, req *emberv1.SubmitJobRequest) (*emberv1.Job, error) {
	if err := x.ready(); err != nil {
		return nil, err
	}
	if (req.Prompt == "") == (len(req.Messages) == 0) {
		return nil, status.Error(codes.InvalidArgument, "give exactly one of prompt and messages")
	}
	if req.Priority < 0 || req.Priority > 9 {
		return nil, status.Errorf(codes.InvalidArgument, "priority %d is not from 0 to 9", req.Priority)
	}
	params, err := x.s.limitParams(ctx, req.Params)
	if err != nil {
		return nil, err
	}
	r := request(params)
	pr := pipeline.Request{
		Model: req.Model, System: req.System, Raw: req.Raw, MaxTokens: r.MaxTokens, RequestID: req.RequestId,
		Params: paramsFromSampling(params),
		Reply:  pipeline.Reply{Topic: req.ReplyTopic, QoS: 1},
	}
	if req.Prompt != "" {
		pr.Prompt = []engine.Segment{{Text: req.Prompt, Data: true}}
	}
	for _, m := range req.Messages {
		pr.Messages = append(pr.Messages, engine.Message{Role: m.Role, Content: m.Content})
	}
	if o := req.Output; o != nil {
		pr.Output.Format = o.Format
		if o.SchemaJson != "" {
			if !json.Valid([]byte(o.SchemaJson)) {
				return nil, status.Error(codes.InvalidArgument, "output.schema_json is not valid JSON")
			}
			pr.Output.Schema = json.RawMessage(o.SchemaJson)
		}
	}
	switch pr.Output.Format {
	case "", "text":
		pr.Output.Format = "text"
	case "json":
	default:
		return nil, status.Errorf(codes.InvalidArgument, "output.format %q is not text or json", pr.Output.Format)
	}
	prio := int(req.Priority)
	if prio == 0 {
		prio = 6
	}
	j, err := x.s.deps.Jobs.Intake.Submit(ctx, pr, prio)
	if err != nil {
		return nil, toStatus(x.s.log, err)
	}
	return jobPB(j), nil
}

// paramsFromSampling keeps only what the request set, so the job uses the
// engine defaults of when it runs for the rest.
func paramsFromSampling(p *emberv1.SamplingParams) pipeline.Params {
	if p == nil {
		return pipeline.Params{}
	}
	return pipeline.Params{Temperature: p.Temperature, TopK: p.TopK, TopP: p.TopP, MinP: p.MinP,
		RepeatPenalty: p.RepeatPenalty, Seed: p.Seed, Stop: p.Stop}
}

func (x *jobService) Get(ctx context.Context, req *emberv1.GetJobRequest) (*emberv1.Job, error) {
	j, err := x.s.deps.Store.Job(req.Id)
	if err == nil && !x.s.jobVisible(callerRole(ctx), j) {
		err = fmt.Errorf("job %d: %w", req.Id, store.ErrNotFound)
	}
	if err != nil {
		return nil, toStatus(x.s.log, err)
	}
	return jobPB(j), nil
}

func (x *jobService) List(ctx context.Context, req *emberv1.ListJobsRequest) (*emberv1.ListJobsResponse, error) {
	f := store.JobFilter{State: jobStateFromPB(req.State), Pipeline: req.Pipeline, BeforeID: req.BeforeId, Limit: int(req.Limit),
		Keep: x.s.jobKeep(ctx)}
	if req.Since != nil {
		f.Since = req.Since.AsTime()
	}
	if req.Until != nil {
		f.Until = req.Until.AsTime()
	}
	js, err := x.s.deps.Store.Jobs(f)
	if err != nil {
		return nil, toStatus(x.s.log, err)
	}
	out := &emberv1.ListJobsResponse{}
	for _, j := range js {
		out.Jobs = append(out.Jobs, jobPB(j))
	}
	return out, nil
}

func (x *jobService) Watch(req *emberv1.WatchJobsRequest, stream emberv1.JobService_WatchServer) error {
	if err := x.ready(); err != nil {
		return err
	}
	ch, stop := x.s.deps.Jobs.Events.Watch()
	defer stop()
	ids := map[uint64]bool{}
	for _, id := range req.Ids {
		ids[id] = true
	}
	state := jobStateFromPB(req.State)
	visible := x.s.jobKeep(stream.Context())
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case j, ok := <-ch:
			if !ok {
				return status.Error(codes.ResourceExhausted, "watcher fell behind; list the jobs and watch again")
			}
			if (len(ids) > 0 && !ids[j.ID]) || (req.Pipeline != "" && j.Pipeline != req.Pipeline) || (state != "" && j.State != state) || !visible(j) {
				continue
			}
			if err := stream.Send(jobPB(j)); err != nil {
				return err
			}
		}
	}
}

func (x *jobService) Cancel(ctx context.Context, req *emberv1.CancelJobRequest) (*emberv1.Job, error) {
	if err := x.ready(); err != nil {
		return nil, err
	}
	j, err := x.s.deps.Jobs.Dispatcher.Cancel(ctx, req.Id)
	if aerr := x.s.audited(ctx, "job.cancel", err, map[string]any{"job": req.Id}); aerr != nil {
		return nil, aerr
	}
	if errors.Is(err, store.ErrWrongState) {
		cur, _ := x.s.deps.Store.Job(req.Id)
		return nil, status.Errorf(codes.FailedPrecondition, "job %d is %s and cannot be cancelled", req.Id, cur.State)
	}
	if err != nil {
		return nil, toStatus(x.s.log, err)
	}
	return jobPB(j), nil
}
