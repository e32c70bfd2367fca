package api

import (
	"context"
	"encoding/json"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ember-edge/ember/daemon/audit"
	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
)

// auditService serves the audit chain. Both methods are administrative
// (permissions "audit.read" and "audit.verify").
type auditService struct {
	emberv1.UnimplementedAuditServiceServer
	s *Server
}

func (x *auditService) log() (*audit.Log, error) {
	if x.s.deps.Audit == nil {
		return nil, status.Error(codes.FailedPrecondition, "the audit log is not open")
	}
	return x.s.deps.Audit, nil
}

func auditPB(e audit.Entry) *emberv1.AuditEntry {
	out := &emberv1.AuditEntry{Index: e.Index, Prev: e.Prev, Boot: e.Boot, Action: e.Action, Actor: e.Actor,
		Ok: e.OK, Error: e.Error, Seq: e.Seq}
	if !e.At.IsZero() {
		out.At = timestamppb.New(e.At)
	}
	if len(e.Details) > 0 {
		js, _ := json.Marshal(e.Details)
		out.DetailsJson = string(js)
	}
	return out
}

func (x *auditService) List(ctx context.Context, req *emberv1.ListAuditRequest) (*emberv1.ListAuditResponse, error) {
	l, err := x.log()
	if err != nil {
		return nil, err
	}
	limit := int(req.Limit)
	if limit <= 0 {
		limit = 100
	}
	head, err := x.s.deps.Store.AuditHead()
	if err != nil {
		return nil, toStatus(x.s.log, err)
	}
	out := &emberv1.ListAuditResponse{First: head.First, Last: head.Last}
	for after := req.AfterIndex; len(out.Entries) < limit; {
		es, err := l.List(after, limit)
		if err != nil {
			return nil, toStatus(x.s.log, err)
		}
		if len(es) == 0 {
			break
		}
		for _, e := range es {
			after = e.Index
			if (req.Action == "" || e.Action == req.Action) && len(out.Entries) < limit {
				out.Entries = append(out.Entries, auditPB(e))
			}
		}
	}
	return out, nil
}

func (x *auditService) Verify(ctx context.Context, _ *emberv1.VerifyAuditRequest) (*emberv1.VerifyAuditResponse, error) {
	l, err := x.log()
	if err != nil {
		return nil, err
	}
	r, err := l.Verify()
	if err != nil {
		return nil, toStatus(x.s.log, err)
	}
	st := l.Stats()
	out := &emberv1.VerifyAuditResponse{Ok: r.OK, Entries: r.Entries, Reason: r.Reason, First: r.First, Last: r.Last,
		Checkpoints: int32(r.Checkpoints), BadCheckpoints: int32(r.BadCheckpoints), Anchor: r.Anchor, PublicKey: r.Key,
		WriteFailures: st.Failures, LastWriteError: st.LastError}
	if r.FirstBad != nil {
		out.HasFirstBad, out.FirstBad = true, *r.FirstBad
	}
	return out, nil
}

// audited writes the audit entry of an administrative call and returns
// the call's error. When the entry cannot be written the call fails
// (FailedPrecondition, which clients do not retry) even if the action
// itself succeeded: an unaudited change
// must not look like a normal one. The message says the action took
// effect, so that the caller does not blindly retry it.
func (s *Server) audited(ctx context.Context, action string, err error, details map[string]any) error {
	if details == nil {
		details = map[string]any{}
	}
	if m, ok := grpc.Method(ctx); ok {
		details["rpc"] = m
	}
	if id, ok := identityFrom(ctx); ok {
		details["role"] = id.Role.String()
	}
	if aerr := s.deps.Audit.Write(ctx, action, actor(ctx), err, details); aerr != nil {
		if err != nil {
			return status.Errorf(codes.FailedPrecondition, "%s failed (%v), and its audit entry could not be written: %v", action, err, aerr)
		}
		return status.Errorf(codes.FailedPrecondition, "%s took effect, but its audit entry could not be written: %v", action, aerr)
	}
	return nil
}

// auditInference writes an inference call's metadata entry (when
// audit.inference is metadata). A call whose entry cannot be written
// fails: its final message is withheld.
func (s *Server) auditInference(ctx context.Context, action, model string, promptTokens int, err error, extra map[string]any) error {
	if aerr := s.deps.Audit.Inference(ctx, action, actor(ctx), model, promptTokens, err, extra); aerr != nil {
		return status.Error(codes.FailedPrecondition, fmt.Sprintf("%s: the audit entry could not be written: %v", action, aerr))
	}
	return nil
}
