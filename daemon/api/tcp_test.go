package api

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/daemon/engine"
	"github.com/ember-edge/ember/daemon/models"
	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/internal/testkit"
	"github.com/ember-edge/ember/internal/tlsconf"
	"github.com/ember-edge/ember/internal/tlsconf/tlstest"
	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
)

// syncBuffer is a log sink that tests can read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serveTCP starts the API on TCP only, with the given grpc config lines.
func serveTCP(t *testing.T, grpcYAML string) (addr string, logs *syncBuffer) {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Parse([]byte("device_id: tcp\nstate_dir: state\n"+grpcYAML), dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(cfg.DBPath(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	eng, err := engine.New(engine.Options{LibDir: testkit.LibDir(t), Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Close)
	logs = &syncBuffer{}
	srv, err := New(Deps{Config: cfg, Engine: eng, Registry: models.New(st, nil, cfg.ModelStoreDir()),
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Device: func() *emberv1.InfoResponse { return &emberv1.InfoResponse{DeviceId: cfg.DeviceID} }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, time.Second); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	addr = strings.TrimPrefix(srv.Addrs()[0], "tcp:")
	return addr, logs
}

func TestTCPWithTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir)
	certFile, keyFile := ca.Issue(t, "server")
	addr, logs := serveTCP(t, "grpc: {socket: \"\", tcp: \"127.0.0.1:0\", tls: {cert: "+certFile+", key: "+keyFile+"}, allow_unauthenticated_tcp: true}\n")

	tc, err := tlsconf.Client{CA: ca.File, ServerName: "localhost"}.Config()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	info, err := emberv1.NewDeviceServiceClient(conn).Info(context.Background(), &emberv1.InfoRequest{})
	if err != nil || info.DeviceId != "tcp" {
		t.Fatalf("Info over TLS: %v %v", info, err)
	}
	if strings.Contains(logs.String(), "without TLS") {
		t.Error("warned about missing TLS on a TLS listener")
	}

	// A plaintext client cannot talk to the TLS listener.
	plain, _ := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer plain.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := emberv1.NewDeviceServiceClient(plain).Info(ctx, &emberv1.InfoRequest{}); err == nil {
		t.Fatal("plaintext client reached the TLS listener")
	}
}

func TestTCPInsecureWarnsAtStart(t *testing.T) {
	addr, logs := serveTCP(t, "grpc: {socket: \"\", tcp: \"127.0.0.1:0\", insecure: true, allow_unauthenticated_tcp: true}\n")
	if !strings.Contains(logs.String(), "without TLS") || !strings.Contains(logs.String(), "allow_unauthenticated_tcp") {
		t.Fatalf("no warning logged for insecure, unauthenticated TCP:\n%s", logs)
	}
	conn, _ := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer conn.Close()
	if _, err := emberv1.NewDeviceServiceClient(conn).Info(context.Background(), &emberv1.InfoRequest{}); err != nil {
		t.Fatal(err)
	}
}
