package api

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/ember-edge/ember/daemon/auth"
	"github.com/ember-edge/ember/daemon/store"
	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
)

// Record-level rules: callers below operator see only shared records and
// the jobs of shared pipelines, and only admins see audit records. Lists
// leave the others out and Get answers NOT_FOUND, so a viewer learns
// nothing of what it may not read.

// recordVisible reports whether role may read r.
func recordVisible(role auth.Role, r store.Record) bool {
	if r.Kind == store.KindAudit && !auth.ReadAudit.Allows(role) {
		return false
	}
	return r.Classification != store.ClassLocal || auth.ReadLocal.Allows(role)
}

// jobVisible reports whether role may read j: a job is classified as its
// pipeline is (as the executor classifies its result).
func (s *Server) jobVisible(role auth.Role, j store.Job) bool {
	if auth.ReadLocal.Allows(role) || s.deps.Pipelines == nil {
		return true
	}
	if p, ok := s.deps.Pipelines.Snapshot().Get(j.Pipeline); ok {
		return p.Config().Classification != store.ClassLocal
	}
	return true
}

func (s *Server) recordKeep(ctx context.Context) func(store.Record) bool {
	role := callerRole(ctx)
	return func(r store.Record) bool { return recordVisible(role, r) }
}

func (s *Server) jobKeep(ctx context.Context) func(store.Job) bool {
	role := callerRole(ctx)
	return func(j store.Job) bool { return s.jobVisible(role, j) }
}

// checkMaxTokens applies the caller's auth.max_tokens to a request's
// sampling parameters and returns the ones to use: a request over the
// cap is refused with RESOURCE_EXHAUSTED naming the limit; one that asks
// for the default gets the cap when the default is higher. p is not
// modified.
func checkMaxTokens(l auth.Limits, role auth.Role, p *emberv1.SamplingParams, def int) (*emberv1.SamplingParams, error) {
	asked := 0
	if p != nil {
		asked = int(p.MaxTokens)
	}
	if asked < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "max_tokens %d is negative", asked)
	}
	n, err := l.CheckMaxTokens(role, asked, def)
	if err != nil {
		return nil, status.Error(codes.ResourceExhausted, err.Error())
	}
	if n == asked {
		return p, nil
	}
	out := &emberv1.SamplingParams{}
	if p != nil {
		out = proto.CloneOf(p)
	}
	out.MaxTokens = int32(n)
	return out, nil
}

func (s *Server) limitParams(ctx context.Context, p *emberv1.SamplingParams) (*emberv1.SamplingParams, error) {
	return checkMaxTokens(s.limits, callerRole(ctx), p, s.deps.Config.Engine.MaxTokens)
}
