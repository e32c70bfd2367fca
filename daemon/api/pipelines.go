package api

import (
	"context"
	"errors"

	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/daemon/pipeline"
	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
)

type pipelineService struct {
	emberv1.UnimplementedPipelineServiceServer
	s *Server
}

func (x *pipelineService) pipelinePB(p *pipeline.Pipeline, backlog map[string]int) *emberv1.Pipeline {
	c := p.Config()
	def, _ := yaml.Marshal(c)
	out := &emberv1.Pipeline{
		Name: c.Name, Match: c.Match, Decode: c.Decode, Model: c.Model, OutputFormat: c.Output.Format,
		Priority: int32(*c.Priority), Classification: c.Classification, DefinitionYaml: string(def),
		Queued: int64(backlog[c.Name]),
	}
	if s := p.Schema(); s != nil {
		out.Grammar = s.Grammar()
	}
	return out
}

func (x *pipelineService) List(ctx context.Context, _ *emberv1.ListPipelinesRequest) (*emberv1.ListPipelinesResponse, error) {
	out := &emberv1.ListPipelinesResponse{}
	if x.s.deps.Pipelines == nil {
		return out, nil
	}
	backlog, _ := x.s.deps.Store.Backlog()
	for _, p := range x.s.deps.Pipelines.Snapshot().List() {
		out.Pipelines = append(out.Pipelines, x.pipelinePB(p, backlog))
	}
	return out, nil
}

func (x *pipelineService) Get(ctx context.Context, req *emberv1.GetPipelineRequest) (*emberv1.Pipeline, error) {
	if x.s.deps.Pipelines != nil {
		if p, ok := x.s.deps.Pipelines.Snapshot().Get(req.Name); ok {
			backlog, _ := x.s.deps.Store.Backlog()
			return x.pipelinePB(p, backlog), nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "pipeline %q is not configured: `emberctl pipelines ls` lists them", req.Name)
}

func (x *pipelineService) Validate(ctx context.Context, req *emberv1.ValidatePipelineRequest) (*emberv1.ValidatePipelineResponse, error) {
	out := &emberv1.ValidatePipelineResponse{}
	defs, err := config.ParsePipelines([]byte(req.Yaml))
	if err == nil {
		var ps []*pipeline.Pipeline
		ps, err = pipeline.CompileAll(defs, x.s.deps.Config.DeviceID)
		for _, p := range ps {
			out.Pipelines = append(out.Pipelines, x.pipelinePB(p, nil))
		}
	}
	if err != nil {
		out.Problems = splitErrors(err)
		return out, nil
	}
	out.Valid = true
	return out, nil
}

func (x *pipelineService) Reload(ctx context.Context, _ *emberv1.ReloadPipelinesRequest) (*emberv1.ReloadPipelinesResponse, error) {
	if x.s.deps.ReloadPipelines == nil {
		return nil, status.Error(codes.Unavailable, "pipelines cannot be reloaded: the job queue is not running")
	}
	names, err := x.s.deps.ReloadPipelines()
	x.s.audit(ctx, "pipelines.reload", err, map[string]any{"pipelines": names})
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "the running pipelines stay; the config's have problems: %v", err)
	}
	return &emberv1.ReloadPipelinesResponse{Pipelines: names}, nil
}

// splitErrors lists the errors errors.Join combined.
func splitErrors(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok && !isLeaf(e) {
			for _, c := range j.Unwrap() {
				walk(c)
			}
			return
		}
		out = append(out, e.Error())
	}
	walk(err)
	return out
}

// isLeaf keeps errors that wrap several errors for their own reasons
// (an InputError) whole.
func isLeaf(e error) bool {
	var ie *pipeline.InputError
	return errors.As(e, &ie)
}
