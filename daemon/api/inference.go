package api

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/ember-edge/ember/daemon/engine"
	"github.com/ember-edge/ember/daemon/models"
	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
)

type inferenceService struct {
	emberv1.UnimplementedInferenceServiceServer
	s *Server
}

// model resolves a request's model name: empty means the default model
// when it is loaded, else the only loaded model.
func (s *Server) model(name string) (*engine.Model, error) {
	e := s.deps.Engine
	if name != "" {
		m, err := e.Model(name)
		if err == nil {
			return m, nil
		}
		if _, rerr := s.deps.Registry.Get(name); errors.Is(rerr, models.ErrUnknownModel) {
			return nil, status.Errorf(codes.NotFound, "model %q is unknown: `emberctl models ls` lists the models this device has", name)
		}
		return nil, status.Errorf(codes.FailedPrecondition, "model %q is not loaded: load it with `emberctl models load %s`", name, name)
	}
	if def, ok := s.deps.Registry.Default(); ok {
		if m, err := e.Model(def.Name); err == nil {
			return m, nil
		}
	}
	if loaded := e.Models(); len(loaded) == 1 {
		return loaded[0], nil
	} else if len(loaded) > 1 {
		return nil, status.Error(codes.InvalidArgument, "several models are loaded and none is the default: name one in the request")
	}
	return nil, status.Error(codes.FailedPrecondition, "no model is loaded: load one with `emberctl models load NAME`")
}

func request(p *emberv1.SamplingParams) engine.Request {
	r := engine.Request{Sampling: engine.DefaultSampling()}
	if p == nil {
		return r
	}
	r.MaxTokens = int(p.MaxTokens)
	r.Stop = p.Stop
	r.Grammar = p.Grammar
	s := &r.Sampling
	if p.Temperature != nil {
		s.Temperature = *p.Temperature
	}
	if p.TopK != nil {
		s.TopK = *p.TopK
	}
	if p.TopP != nil {
		s.TopP = *p.TopP
	}
	if p.MinP != nil {
		s.MinP = *p.MinP
	}
	if p.RepeatPenalty != nil {
		s.RepeatPenalty = *p.RepeatPenalty
	}
	if p.RepeatLastN != nil {
		s.RepeatLastN = *p.RepeatLastN
	}
	if p.Seed != nil {
		s.Seed, s.HasSeed = *p.Seed, true
	}
	s.IgnoreEOS = p.IgnoreEos
	return r
}

func completion(model string, r engine.Result) *emberv1.Completion {
	c := &emberv1.Completion{
		Stop:             r.Stop,
		PromptTokens:     int32(r.PromptTokens),
		CompletionTokens: int32(r.CompletionTokens),
		TimeToFirstToken: durationpb.New(r.TimeToFirstToken),
		Duration:         durationpb.New(r.Duration),
		TokensPerSecond:  r.TokensPerSecond(),
		Model:            model,
		Prompt:           r.Prompt,
	}
	switch r.FinishReason {
	case engine.FinishStop:
		c.FinishReason = emberv1.FinishReason_FINISH_REASON_STOP
	case engine.FinishLength:
		c.FinishReason = emberv1.FinishReason_FINISH_REASON_LENGTH
	case engine.FinishContext:
		c.FinishReason = emberv1.FinishReason_FINISH_REASON_CONTEXT
	}
	return c
}

type textSender interface {
	Send(*emberv1.GenerateResponse) error
	Context() context.Context
}

func sendText(stream textSender) func(string) error {
	return func(text string) error {
		return stream.Send(&emberv1.GenerateResponse{Text: text})
	}
}

func (x *inferenceService) Generate(req *emberv1.GenerateRequest, stream emberv1.InferenceService_GenerateServer) error {
	params, err := x.s.limitParams(stream.Context(), req.Params)
	if err != nil {
		return err
	}
	m, err := x.s.model(req.Model)
	if err != nil {
		return err
	}
	r := request(params)
	r.Prompt = req.Prompt
	res, err := m.Generate(stream.Context(), r, sendText(stream))
	if aerr := x.s.auditInference(stream.Context(), "inference.generate", m.Name(), res.PromptTokens, err,
		map[string]any{"completion_tokens": res.CompletionTokens}); aerr != nil {
		return aerr
	}
	if err != nil {
		return toStatus(x.s.log, err)
	}
	return stream.Send(&emberv1.GenerateResponse{Done: completion(m.Name(), res)})
}

func (x *inferenceService) Chat(req *emberv1.ChatRequest, stream emberv1.InferenceService_ChatServer) error {
	params, err := x.s.limitParams(stream.Context(), req.Params)
	if err != nil {
		return err
	}
	m, err := x.s.model(req.Model)
	if err != nil {
		return err
	}
	msgs := make([]engine.Message, len(req.Messages))
	for i, msg := range req.Messages {
		msgs[i] = engine.Message{Role: msg.Role, Content: msg.Content}
	}
	res, err := m.Chat(stream.Context(), msgs, request(params), sendText(stream))
	if aerr := x.s.auditInference(stream.Context(), "inference.chat", m.Name(), res.PromptTokens, err,
		map[string]any{"completion_tokens": res.CompletionTokens, "messages": len(msgs)}); aerr != nil {
		return aerr
	}
	if err != nil {
		return toStatus(x.s.log, err)
	}
	if !req.ReturnPrompt {
		res.Prompt = ""
	}
	return stream.Send(&emberv1.GenerateResponse{Done: completion(m.Name(), res)})
}

func (x *inferenceService) Embed(ctx context.Context, req *emberv1.EmbedRequest) (*emberv1.EmbedResponse, error) {
	m, err := x.s.model(req.Model)
	if err != nil {
		return nil, err
	}
	emb, err := m.Embed(ctx, req.Inputs)
	if aerr := x.s.auditInference(ctx, "inference.embed", m.Name(), emb.Tokens, err, map[string]any{"inputs": len(req.Inputs)}); aerr != nil {
		return nil, aerr
	}
	if err != nil {
		return nil, toStatus(x.s.log, err)
	}
	out := &emberv1.EmbedResponse{Dimensions: int32(m.EmbeddingSize()), PromptTokens: int32(emb.Tokens), Model: m.Name()}
	for _, v := range emb.Vectors {
		out.Embeddings = append(out.Embeddings, &emberv1.Embedding{Values: v})
	}
	return out, nil
}

func (x *inferenceService) Tokenize(ctx context.Context, req *emberv1.TokenizeRequest) (*emberv1.TokenizeResponse, error) {
	m, err := x.s.model(req.Model)
	if err != nil {
		return nil, err
	}
	toks, err := m.Tokenize(req.Text, req.AddSpecial, req.ParseSpecial)
	if err != nil {
		return nil, toStatus(x.s.log, err)
	}
	out := &emberv1.TokenizeResponse{Model: m.Name(), Tokens: make([]*emberv1.Token, len(toks))}
	for i, t := range toks {
		out.Tokens[i] = &emberv1.Token{Id: t.ID, Piece: t.Piece}
	}
	return out, nil
}
