package api

import (
	"context"
	"encoding/json"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
	"github.com/ember-edge/ember/sync/fleet"
)

type syncService struct {
	emberv1.UnimplementedSyncServiceServer
	s *Server
}

func (x *syncService) Status(ctx context.Context, _ *emberv1.SyncStatusRequest) (*emberv1.SyncStatusResponse, error) {
	u := x.s.deps.Uplink
	if u == nil {
		out := &emberv1.SyncStatusResponse{State: "disabled"}
		if b, err := x.s.deps.Store.SyncBacklog(); err == nil {
			out.BacklogRecords, out.BacklogBytes = b.Records, b.Bytes
			if !b.Oldest.IsZero() {
				out.OldestUnsynced = timestamppb.New(b.Oldest)
			}
		}
		return out, nil
	}
	st := u.Status()
	js, _ := json.Marshal(st)
	out := &emberv1.SyncStatusResponse{
		Enabled: true, State: st.State.String(), Online: st.State.Online(),
		BacklogRecords: st.Backlog.Records, BacklogBytes: st.Backlog.Bytes, BytesSentToday: uint64(st.BytesToday),
		RecordsSent: st.RecordsAcked, BatchesSent: st.BatchesAcked, DialAttempts: st.DialAttempts,
		LastError: st.LastError, StatusJson: string(js),
	}
	if !st.Backlog.Oldest.IsZero() {
		out.OldestUnsynced = timestamppb.New(st.Backlog.Oldest)
	}
	if !st.LastSuccess.IsZero() {
		out.LastSuccess = timestamppb.New(st.LastSuccess)
	}
	return out, nil
}

func (x *syncService) Now(ctx context.Context, _ *emberv1.SyncNowRequest) (*emberv1.SyncNowResponse, error) {
	if x.s.deps.Uplink == nil {
		return nil, status.Error(codes.FailedPrecondition, "no uplink is configured: set uplink.url and uplink.fleet")
	}
	x.s.deps.Uplink.Trigger()
	x.s.audit(ctx, "sync.now", nil, nil)
	return &emberv1.SyncNowResponse{}, nil
}

type updateService struct {
	emberv1.UnimplementedUpdateServiceServer
	s *Server
}

func updatePB(st fleet.Status) *emberv1.UpdateStatusResponse {
	js, _ := json.Marshal(st)
	return &emberv1.UpdateStatusResponse{
		Enabled: true, Phase: st.Phase.String(), ActiveVersion: st.ActiveVersion, TargetVersion: st.TargetVersion,
		Percent: st.Percent, Reason: st.Reason, LastError: st.LastError, KeptVersions: st.KeptVersions,
		StatusJson: string(js),
	}
}

func (x *updateService) Status(ctx context.Context, _ *emberv1.UpdateStatusRequest) (*emberv1.UpdateStatusResponse, error) {
	if x.s.deps.Updater == nil {
		return &emberv1.UpdateStatusResponse{Phase: "disabled"}, nil
	}
	return updatePB(x.s.deps.Updater.Status()), nil
}

func (x *updateService) Rollback(ctx context.Context, req *emberv1.RollbackRequest) (*emberv1.UpdateStatusResponse, error) {
	u := x.s.deps.Updater
	if u == nil {
		return nil, status.Error(codes.FailedPrecondition, "fleet updates are not configured (fleet.trusted_keys)")
	}
	err := u.Rollback(ctx, req.Version)
	x.s.audit(ctx, "fleet.rollback", err, map[string]any{"version": req.Version})
	switch {
	case errors.Is(err, fleet.ErrBusy):
		return nil, status.Errorf(codes.FailedPrecondition, "an update is in progress: %v", err)
	case errors.Is(err, fleet.ErrNotKept):
		return nil, status.Errorf(codes.NotFound, "%v: `emberctl update status` lists the kept versions", err)
	case err != nil:
		return nil, toStatus(x.s.log, err)
	}
	return updatePB(u.Status()), nil
}
