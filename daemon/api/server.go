package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/ember-edge/ember/daemon/audit"
	"github.com/ember-edge/ember/daemon/auth"
	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/daemon/engine"
	"github.com/ember-edge/ember/daemon/governor"
	"github.com/ember-edge/ember/daemon/jobs"
	"github.com/ember-edge/ember/daemon/models"
	"github.com/ember-edge/ember/daemon/pipeline"
	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/hw"
	"github.com/ember-edge/ember/internal/tlsconf"
	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
	"github.com/ember-edge/ember/sync/fleet"
	"github.com/ember-edge/ember/sync/uplink"
)

// Deps are what the services serve.
type Deps struct {
	Config   *config.Config
	Engine   *engine.Engine
	Registry *models.Registry
	Store    *store.Store
	// Jobs is the job queue; nil when it is not running.
	Jobs *jobs.Queue
	// Pipelines are the running pipelines; nil when none can run.
	Pipelines *pipeline.Set
	// ReloadPipelines rereads the pipelines from the config file.
	ReloadPipelines func() ([]string, error)
	// Audit records what callers do; nil records nothing.
	Audit *audit.Log
	// Hardware is the profile detected at start.
	Hardware *hw.Profile
	// Governor reports the governors' state; nil when none runs.
	Governor *governor.Governor
	// Uplink and Updater are nil when sync and fleet updates are off.
	Uplink  *uplink.Uplink
	Updater *fleet.Updater
	Device  DeviceInfo
	Logger  *slog.Logger

	// socketCreds replaces the unix socket's peer credentials in tests,
	// which make callers of any uid and gid through it.
	socketCreds credentials.TransportCredentials
}

// DeviceInfo describes the host for DeviceService.Info.
type DeviceInfo func() *emberv1.InfoResponse

// Server is the gRPC front of the daemon.
type Server struct {
	deps    Deps
	log     *slog.Logger
	health  *health.Server
	servers []*grpc.Server
	lis     []net.Listener

	mapping *auth.Mapping
	tokens  *auth.Tokens // nil without a store
	limits  auth.Limits
	streams *auth.Streams
}

// New builds the services and opens the listeners, so that when it
// returns clients can connect (their calls wait until Serve).
func New(deps Deps) (*Server, error) {
	s := &Server{deps: deps, log: deps.Logger, health: health.NewServer()}
	g := deps.Config.GRPC
	if g.TCP != "" && !g.TCPAuthenticated() && !g.AllowUnauthenticatedTCP {
		return nil, fmt.Errorf("gRPC on TCP %s would authenticate no caller: set grpc.tls, or grpc.allow_unauthenticated_tcp: true", g.TCP)
	}
	var err error
	if s.mapping, err = auth.NewMapping(deps.Config.Auth.Roles, os.Getuid(), g.AllowUnauthenticatedTCP); err != nil {
		return nil, fmt.Errorf("auth.roles: %w", err)
	}
	if deps.Store != nil {
		s.tokens = auth.NewTokens(deps.Store, nil)
	}
	s.limits = deps.Config.AuthLimits()
	s.streams = auth.NewStreams(s.limits)
	if g.Socket != "" {
		lis, err := listenUnix(g.Socket, g.SocketMode)
		if err != nil {
			return nil, err
		}
		creds := deps.socketCreds
		if creds == nil {
			creds = peerCreds{}
		}
		s.add(lis, true, grpc.Creds(creds))
	}
	if g.TCP != "" {
		if g.AllowUnauthenticatedTCP {
			s.log.Warn("gRPC on TCP lets unauthenticated callers in (grpc.allow_unauthenticated_tcp), with the role of principal \"anonymous\"",
				"addr", g.TCP, "fix", "set grpc.tls (tokens) and grpc.tls.client_ca (certificates), and remove grpc.allow_unauthenticated_tcp")
		}
		var opts []grpc.ServerOption
		if g.TLS.Cert != "" {
			creds, err := tlsCreds(g.TLS)
			if err != nil {
				s.closeListeners()
				return nil, err
			}
			opts = append(opts, grpc.Creds(creds))
		} else {
			s.log.Warn("gRPC on TCP without TLS: anyone who can reach the port can use the device",
				"addr", g.TCP, "fix", "set grpc.tls.cert and grpc.tls.key")
		}
		lis, err := net.Listen("tcp", g.TCP)
		if err != nil {
			s.closeListeners()
			return nil, fmt.Errorf("listen on %s: %w", g.TCP, err)
		}
		s.add(lis, false, opts...)
	}
	return s, nil
}

// add serves the services on lis. Reflection is served on the unix
// socket only: it describes the whole API to whoever asks, which helps
// a technician on the device and no one on the network.
func (s *Server) add(lis net.Listener, unixSocket bool, opts ...grpc.ServerOption) {
	size := int(s.deps.Config.GRPC.MaxRecvMsgSize)
	if size <= 0 {
		size = config.DefaultMaxRecvMsgSize
	}
	opts = append(opts,
		grpc.MaxRecvMsgSize(size),
		grpc.ChainUnaryInterceptor(s.recoverUnary, s.authUnary),
		grpc.ChainStreamInterceptor(s.recoverStream, s.authStream),
	)
	gs := grpc.NewServer(opts...)
	emberv1.RegisterInferenceServiceServer(gs, &inferenceService{s: s})
	emberv1.RegisterModelServiceServer(gs, &modelService{s: s})
	emberv1.RegisterDeviceServiceServer(gs, &deviceService{s: s})
	emberv1.RegisterJobServiceServer(gs, &jobService{s: s})
	emberv1.RegisterOutboxServiceServer(gs, &outboxService{s: s})
	emberv1.RegisterPipelineServiceServer(gs, &pipelineService{s: s})
	emberv1.RegisterSyncServiceServer(gs, &syncService{s: s})
	emberv1.RegisterUpdateServiceServer(gs, &updateService{s: s})
	emberv1.RegisterAuditServiceServer(gs, &auditService{s: s})
	emberv1.RegisterAuthServiceServer(gs, &authService{s: s})
	healthpb.RegisterHealthServer(gs, s.health)
	if unixSocket {
		reflection.Register(gs)
	}
	s.servers = append(s.servers, gs)
	s.lis = append(s.lis, lis)
}

// Register lets other packages add services to every listener before
// Serve, so that later parts of the daemon share the same sockets.
func (s *Server) Register(fn func(grpc.ServiceRegistrar)) {
	for _, gs := range s.servers {
		fn(gs)
	}
}

// Addrs returns the listening addresses.
func (s *Server) Addrs() []string {
	var out []string
	for _, l := range s.lis {
		out = append(out, l.Addr().Network()+":"+l.Addr().String())
	}
	return out
}

// Serve serves until ctx is cancelled, then stops gracefully: no new
// calls are accepted and in-flight ones get grace to finish before they
// are cancelled.
func (s *Server) Serve(ctx context.Context, grace time.Duration) error {
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	g, gctx := errgroup.WithContext(ctx)
	for i, gs := range s.servers {
		lis := s.lis[i]
		g.Go(func() error {
			if err := gs.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				return fmt.Errorf("serve gRPC on %s: %w", lis.Addr(), err)
			}
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		s.health.Shutdown()
		s.stop(grace)
		return nil
	})
	return g.Wait()
}

func (s *Server) stop(grace time.Duration) {
	done := make(chan struct{})
	go func() {
		for _, gs := range s.servers {
			gs.GracefulStop()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(grace):
		s.log.Warn("shutdown grace period over; cancelling in-flight calls", "grace", grace)
		for _, gs := range s.servers {
			gs.Stop()
		}
		<-done
	}
	if sock := s.deps.Config.GRPC.Socket; sock != "" {
		os.Remove(sock)
	}
}

func (s *Server) closeListeners() {
	for _, l := range s.lis {
		l.Close()
	}
}

// recoverUnary turns a panic in a handler into an Internal error: one bad
// request must not take the appliance down.
func (s *Server) recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in handler", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
			err = status.Errorf(codes.Internal, "internal error in %s", info.FullMethod)
		}
	}()
	return h(ctx, req)
}

func (s *Server) recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in handler", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
			err = status.Errorf(codes.Internal, "internal error in %s", info.FullMethod)
		}
	}()
	return h(srv, ss)
}

// listenUnix listens on a unix socket in a directory no other account
// controls (prepareSocketDir), replacing a stale socket file left
// by a crash but never a live one or a file that is not a socket.
func listenUnix(path, mode string) (net.Listener, error) {
	if err := prepareSocketDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("listen on %s: a file that is not a socket is in the way", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen on %s: another emberd is already listening there", path)
		}
		os.Remove(path)
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	perm, _ := strconv.ParseUint(mode, 8, 32)
	if err := os.Chmod(path, os.FileMode(perm)); err != nil {
		lis.Close()
		return nil, fmt.Errorf("set permissions of %s: %w", path, err)
	}
	return lis, nil
}

func tlsCreds(c config.TLS) (credentials.TransportCredentials, error) {
	cfg, err := tlsconf.Server{Cert: c.Cert, Key: c.Key, ClientCA: c.ClientCA,
		Keys: tlsconf.Keys{Cert: "grpc.tls.cert", Key: "grpc.tls.key", CA: "grpc.tls.client_ca"}}.Config()
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(cfg), nil
}
