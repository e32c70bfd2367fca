package api

import (
	"context"
	"encoding/json"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
)

type deviceService struct {
	emberv1.UnimplementedDeviceServiceServer
	s *Server
}

func (x *deviceService) Info(ctx context.Context, _ *emberv1.InfoRequest) (*emberv1.InfoResponse, error) {
	info := x.s.deps.Device()
	if g := x.s.deps.Governor; g != nil {
		st := g.State()
		info.Governors = &emberv1.Governors{Thermal: st.Thermal, Celsius: st.Celsius, ThermalSince: timestamppb.New(st.ThermalSince),
			DiskLow: st.DiskLow, DiskFreeBytes: st.DiskFree, HeldBelowPriority: int32(st.HeldBelow), RefusedBelowPriority: int32(st.RefusedBelow)}
	}
	for _, m := range x.s.deps.Engine.Models() {
		st, stats := m.Settings(), m.Stats()
		info.LoadedModels = append(info.LoadedModels, &emberv1.LoadedModel{
			Name: m.Name(), Context: uint32(st.Context), Threads: int32(st.Threads),
			QueueDepth: int32(stats.QueueDepth), Active: int32(stats.Active), QueueCapacity: int32(stats.QueueCapacity),
			RequestsTotal: stats.Requests, TokensGeneratedTotal: stats.Tokens,
		})
	}
	return info, nil
}

func (x *deviceService) Hardware(ctx context.Context, _ *emberv1.HardwareRequest) (*emberv1.HardwareResponse, error) {
	if x.s.deps.Hardware == nil {
		return nil, status.Error(codes.Unavailable, "no hardware profile")
	}
	b, err := json.Marshal(x.s.deps.Hardware)
	if err != nil {
		return nil, toStatus(x.s.log, err)
	}
	return &emberv1.HardwareResponse{ProfileJson: string(b)}, nil
}
