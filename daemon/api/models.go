package api

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ember-edge/ember/daemon/auth"
	"github.com/ember-edge/ember/daemon/engine"
	"github.com/ember-edge/ember/daemon/gguf"
	"github.com/ember-edge/ember/daemon/models"
	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
)

type modelService struct {
	emberv1.UnimplementedModelServiceServer
	s *Server
}

func (x *modelService) modelPB(e models.Entry) *emberv1.Model {
	m := &emberv1.Model{
		Name: e.Name, Path: e.Path, Sha256: e.SHA256, SizeBytes: e.Size, Source: e.Source,
		Default: e.Default, License: e.License, Version: e.Version,
	}
	if !e.AddedAt.IsZero() {
		m.AddedAt = timestamppb.New(e.AddedAt)
	}
	if lm, err := x.s.deps.Engine.Model(e.Name); err == nil {
		st := lm.Settings()
		meta := lm.Metadata()
		m.Loaded, m.Context, m.Threads = true, uint32(st.Context), int32(st.Threads)
		m.Architecture, m.FileType, m.ParameterCount = meta.Architecture, meta.FileTypeName, meta.ParameterCount
		if m.License == "" {
			m.License = meta.License
		}
	}
	return m
}

func (x *modelService) List(ctx context.Context, _ *emberv1.ListModelsRequest) (*emberv1.ListModelsResponse, error) {
	entries, err := x.s.deps.Registry.List()
	if err != nil {
		return nil, toStatus(x.s.log, err)
	}
	out := &emberv1.ListModelsResponse{}
	for _, e := range entries {
		out.Models = append(out.Models, x.modelPB(e))
	}
	return out, nil
}

func (x *modelService) Inspect(ctx context.Context, req *emberv1.InspectModelRequest) (*emberv1.InspectModelResponse, error) {
	out := &emberv1.InspectModelResponse{}
	path := req.GetPath()
	if name := req.GetName(); name != "" {
		e, err := x.s.deps.Registry.Get(name)
		if err != nil {
			return nil, toStatus(x.s.log, err)
		}
		out.Model = x.modelPB(e)
		path = e.Path
	}
	if path == "" {
		return nil, status.Error(codes.InvalidArgument, "name a model or a path to inspect")
	}
	if req.GetName() == "" {
		if id, _ := identityFrom(ctx); !auth.InspectPath.Allows(id.Role) {
			return nil, status.Error(codes.PermissionDenied, auth.DenyMessage(auth.InspectPath, id))
		}
	}
	f, err := gguf.Open(path)
	if err != nil {
		return nil, toStatus(x.s.log, err)
	}
	out.Metadata = metadataPB(f)
	return out, nil
}

func metadataPB(f *gguf.File) *emberv1.ModelMetadata {
	m := f.Metadata()
	return &emberv1.ModelMetadata{
		GgufVersion: f.Version, Architecture: m.Architecture, Name: m.Name, License: m.License,
		FileType: m.FileTypeName, Quantization: m.Quantization, ParameterCount: m.ParameterCount,
		ContextLength: m.ContextLength, EmbeddingLength: m.EmbeddingLength, BlockCount: m.BlockCount,
		HeadCount: m.HeadCount, HeadCountKv: m.HeadCountKV, VocabSize: uint64(m.VocabSize),
		TokenizerModel: m.TokenizerModel, ChatTemplate: m.ChatTemplate,
		TensorCount: uint64(m.TensorCount), TensorBytes: m.TensorBytes, FileBytes: f.Size,
		Kv: f.KVSummary(),
	}
}

func (x *modelService) Load(ctx context.Context, req *emberv1.LoadModelRequest) (*emberv1.LoadModelResponse, error) {
	e, err := x.s.deps.Registry.Get(req.Name)
	if err != nil {
		return nil, toStatus(x.s.log, err)
	}
	spec := engine.ModelSpec{Name: e.Name, Path: e.Path, Threads: e.Threads, Context: e.Context}
	if req.Context != 0 {
		spec.Context = int(req.Context)
	}
	if req.Threads != 0 {
		spec.Threads = int(req.Threads)
	}
	if spec.Context != 0 && spec.Context < 64 {
		return nil, status.Errorf(codes.InvalidArgument, "context %d is too small; use at least 64 tokens", spec.Context)
	}
	if spec.Threads < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "threads %d must not be negative", spec.Threads)
	}
	_, err = x.s.deps.Engine.Load(spec)
	if aerr := x.s.audited(ctx, "model.load", err, map[string]any{"model": e.Name, "path": e.Path, "context": spec.Context, "threads": spec.Threads}); aerr != nil {
		return nil, aerr
	}
	if err != nil {
		return nil, toStatus(x.s.log, err)
	}
	return &emberv1.LoadModelResponse{Model: x.modelPB(e)}, nil
}

func (x *modelService) Unload(ctx context.Context, req *emberv1.UnloadModelRequest) (*emberv1.UnloadModelResponse, error) {
	err := x.s.deps.Engine.Unload(req.Name)
	if aerr := x.s.audited(ctx, "model.unload", err, map[string]any{"model": req.Name}); aerr != nil {
		return nil, aerr
	}
	if err != nil {
		return nil, toStatus(x.s.log, err)
	}
	return &emberv1.UnloadModelResponse{}, nil
}

func (x *modelService) Import(req *emberv1.ImportModelRequest, stream emberv1.ModelService_ImportServer) error {
	if req.Path == "" {
		return status.Error(codes.InvalidArgument, "path of the GGUF file to import is empty")
	}
	var sendErr error
	e, err := x.s.deps.Registry.Import(stream.Context(), req.Path, req.Name, req.Replace, func(p models.Progress) {
		if sendErr == nil {
			sendErr = stream.Send(&emberv1.ImportModelResponse{Event: &emberv1.ImportModelResponse_Progress{
				Progress: &emberv1.ImportProgress{Phase: p.Phase, BytesDone: p.Done, BytesTotal: p.Total},
			}})
		}
	})
	if aerr := x.s.audited(stream.Context(), "model.import", err,
		map[string]any{"model": e.Name, "from": req.Path, "sha256": e.SHA256, "replace": req.Replace}); aerr != nil {
		return aerr
	}
	if err != nil {
		return toStatus(x.s.log, err)
	}
	if sendErr != nil {
		return sendErr
	}
	x.s.log.Info("model imported", "model", e.Name, "sha256", e.SHA256, "from", req.Path)
	return stream.Send(&emberv1.ImportModelResponse{Event: &emberv1.ImportModelResponse_Model{Model: x.modelPB(e)}})
}
