package api

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ember-edge/ember/daemon/store"
	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
)

type outboxService struct {
	emberv1.UnimplementedOutboxServiceServer
	s *Server
}

func recordPB(r store.Record) *emberv1.Record {
	return &emberv1.Record{
		Seq: r.Seq, Kind: r.Kind, DeviceId: r.DeviceID, Pipeline: r.Pipeline, JobId: r.JobID, Priority: int32(r.Priority),
		Classification: r.Classification, CreatedAt: timestamppb.New(r.CreatedAt), Boot: r.Boot, DataJson: string(r.Data),
	}
}

func (x *outboxService) List(ctx context.Context, req *emberv1.ListRecordsRequest) (*emberv1.ListRecordsResponse, error) {
	rs, err := x.s.deps.Store.Records(store.RecordFilter{Kind: req.Kind, Pipeline: req.Pipeline, AfterSeq: req.AfterSeq, Limit: int(req.Limit),
		Keep: x.s.recordKeep(ctx)})
	if err != nil {
		return nil, toStatus(x.s.log, err)
	}
	out := &emberv1.ListRecordsResponse{}
	for _, r := range rs {
		out.Records = append(out.Records, recordPB(r))
	}
	return out, nil
}

func (x *outboxService) Get(ctx context.Context, req *emberv1.GetRecordRequest) (*emberv1.Record, error) {
	r, err := x.s.deps.Store.Record(req.Seq)
	if err == nil && !recordVisible(callerRole(ctx), r) {
		err = fmt.Errorf("record %d: %w", req.Seq, store.ErrNotFound)
	}
	if err != nil {
		return nil, toStatus(x.s.log, err)
	}
	return recordPB(r), nil
}

func (x *outboxService) Stats(ctx context.Context, _ *emberv1.OutboxStatsRequest) (*emberv1.OutboxStatsResponse, error) {
	st, err := x.s.deps.Store.OutboxStats()
	if err != nil {
		return nil, toStatus(x.s.log, err)
	}
	out := &emberv1.OutboxStatsResponse{Records: st.Records, Bytes: st.Bytes, LastSeq: st.LastSeq, Backlog: map[string]int64{}}
	if !st.Oldest.IsZero() {
		out.Oldest = timestamppb.New(st.Oldest)
	}
	if b, err := x.s.deps.Store.Backlog(); err == nil {
		for k, v := range b {
			out.Backlog[k] = int64(v)
		}
	}
	if w, err := x.s.deps.Store.Waste(); err == nil {
		out.DbFileBytes, out.DbFreeBytes = w.FileBytes, w.FreeBytes
	}
	if m := x.s.deps.Jobs; m != nil {
		js := m.Stats()
		out.Ingested, out.Duplicates, out.Coalesced, out.Rejected = js.Ingested, js.Duplicates, js.Coalesced, js.Rejected
		out.DeadLetters, out.JobsDone, out.JobsFailed, out.JobsRunning = js.DeadLetters, js.Done, js.Failed, int32(js.Running)
	}
	return out, nil
}
