package api

import (
	"context"

	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
)

type deviceService struct {
	emberv1.UnimplementedDeviceServiceServer
	s *Server
}

func (x *deviceService) Info(ctx context.Context, _ *emberv1.InfoRequest) (*emberv1.InfoResponse, error) {
	info := x.s.deps.Device()
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
