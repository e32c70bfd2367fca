package api

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
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
	caPEM, certFile, keyFile := selfSigned(t, dir)
	addr, logs := serveTCP(t, "grpc: {socket: \"\", tcp: \"127.0.0.1:0\", tls: {cert: "+certFile+", key: "+keyFile+"}}\n")

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "localhost"})))
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
	addr, logs := serveTCP(t, "grpc: {socket: \"\", tcp: \"127.0.0.1:0\", insecure: true}\n")
	if !strings.Contains(logs.String(), "without TLS") {
		t.Fatalf("no warning logged for insecure TCP:\n%s", logs)
	}
	conn, _ := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer conn.Close()
	if _, err := emberv1.NewDeviceServiceClient(conn).Info(context.Background(), &emberv1.InfoRequest{}); err != nil {
		t.Fatal(err)
	}
}

// selfSigned writes a self-signed certificate for localhost and returns
// it as PEM, and the cert and key file paths.
func selfSigned(t *testing.T, dir string) ([]byte, string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IsCA:         true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kb, _ := x509.MarshalECPrivateKey(key)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, certPEM, 0o600)
	os.WriteFile(keyFile, keyPEM, 0o600)
	return certPEM, certFile, keyFile
}
