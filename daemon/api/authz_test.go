package api

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/ember-edge/ember/daemon/audit"
	"github.com/ember-edge/ember/daemon/auth"
	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/daemon/engine"
	"github.com/ember-edge/ember/daemon/models"
	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/daemon/synth"
	"github.com/ember-edge/ember/internal/testkit"
	"github.com/ember-edge/ember/internal/tlsconf"
	"github.com/ember-edge/ember/internal/tlsconf/tlstest"
	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
)

// fakePeerCreds are the unix socket's real peer credentials with the uid
// and gid replaced by those the client's bound address names
// (".../peer-<uid>-<gid>-<n>"): the seam through which tests call as any
// user while the interceptor goes the production way from AuthInfo on.
type fakePeerCreds struct{ peerCreds }

func (f fakePeerCreds) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	c, info, err := f.peerCreds.ServerHandshake(c)
	if err != nil {
		return c, info, err
	}
	u := info.(unixPeer)
	var uid, gid, n int
	if _, err := fmt.Sscanf(filepath.Base(c.RemoteAddr().String()), "peer-%d-%d-%d", &uid, &gid, &n); err == nil {
		u = unixPeer{CommonAuthInfo: u.CommonAuthInfo, UID: uid, GID: gid, PID: u.PID, Known: true}
		u.name()
	}
	return c, u, nil
}

// authServer is an API with a store, a tiny model and the given extra
// config, on a unix socket (with fakePeerCreds) and, if grpcYAML says
// so, TCP.
type authServer struct {
	dir, socket, tcp string
	st               *store.Store
	srv              *Server
	n                atomic.Int64
}

func serveAuth(t *testing.T, grpcYAML, authYAML string) *authServer {
	t.Helper()
	dir := t.TempDir()
	modelPath := testkit.WriteModel(t, synth.Tiny)
	cfg, err := config.Parse([]byte("device_id: auth\nstate_dir: state\n"+grpcYAML+authYAML+
		"models: [{name: tiny, path: "+modelPath+", default: true}]\n"), dir)
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
	if _, err := eng.Load(engine.ModelSpec{Name: "tiny", Path: modelPath}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := New(Deps{Config: cfg, Engine: eng, Registry: models.New(st, cfg.Models, cfg.ModelStoreDir()), Store: st,
		Logger: log, socketCreds: fakePeerCreds{}, Audit: audit.New(audit.Options{Store: st, DeviceID: cfg.DeviceID, Logger: log}),
		Device: func() *emberv1.InfoResponse { return &emberv1.InfoResponse{DeviceId: cfg.DeviceID} }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, time.Second); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	a := &authServer{dir: dir, socket: cfg.GRPC.Socket, st: st, srv: srv}
	for _, addr := range srv.Addrs() {
		if tcp, ok := strings.CutPrefix(addr, "tcp:"); ok {
			a.tcp = tcp
		}
	}
	t.Cleanup(func() {
		for _, gs := range srv.servers {
			for name, info := range gs.GetServiceInfo() {
				for _, m := range info.Methods {
					if _, ok := auth.Policy["/"+name+"/"+m.Name]; !ok {
						t.Errorf("/%s/%s has no entry in auth.Policy", name, m.Name)
					}
				}
			}
		}
	})
	return a
}

// as connects to the unix socket as uid and gid.
func (a *authServer) as(t *testing.T, uid, gid int) *grpc.ClientConn {
	t.Helper()
	local := filepath.Join(a.dir, fmt.Sprintf("peer-%d-%d-%d", uid, gid, a.n.Add(1)))
	conn, err := grpc.NewClient("passthrough:///ember", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			d := net.Dialer{LocalAddr: &net.UnixAddr{Name: local, Net: "unix"}}
			return d.DialContext(ctx, "unix", a.socket)
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// roleUIDs are the uids auth.roles gives each role in these tests.
var roleUIDs = map[auth.Role]int{auth.Viewer: 1001, auth.Technician: 1002, auth.Operator: 1003, auth.Admin: 1004}

const rolesYAML = "auth:\n  roles: {technician: [uid:1002], operator: [uid:1003], admin: [uid:1004]}\n" +
	"  max_tokens: {}\n  max_streams: {}\n"

// call invokes method with an empty request, streaming or not, and
// returns its status.
func call(conn *grpc.ClientConn, method string, stream bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if !stream {
		return conn.Invoke(ctx, method, &emptypb.Empty{}, &emptypb.Empty{})
	}
	s, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method)
	if err != nil {
		return err
	}
	if err := s.SendMsg(&emptypb.Empty{}); err != nil && err != io.EOF {
		return err
	}
	s.CloseSend()
	for {
		if err := s.RecvMsg(&emptypb.Empty{}); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

// TestEveryRPCForEveryRole calls every RPC in the policy as each role
// over the unix socket: a role below the permission's is refused with
// PERMISSION_DENIED naming the permission, others get past the check.
func TestEveryRPCForEveryRole(t *testing.T) {
	a := serveAuth(t, "grpc: {socket: ember.sock}\n", rolesYAML)
	streams := map[string]bool{}
	for _, sd := range []grpc.ServiceDesc{emberv1.InferenceService_ServiceDesc, emberv1.JobService_ServiceDesc, emberv1.ModelService_ServiceDesc} {
		for _, s := range sd.Streams {
			streams["/"+sd.ServiceName+"/"+s.StreamName] = true
		}
	}
	streams["/grpc.health.v1.Health/Watch"] = true
	streams["/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"] = true
	streams["/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"] = true
	conns := map[auth.Role]*grpc.ClientConn{}
	for role, uid := range roleUIDs {
		conns[role] = a.as(t, uid, uid)
	}
	for method, perm := range auth.Policy {
		for _, role := range auth.Roles {
			t.Run(fmt.Sprintf("%s/%s", method, role), func(t *testing.T) {
				err := call(conns[role], method, streams[method])
				st := status.Convert(err)
				if !perm.Allows(role) {
					if st.Code() != codes.PermissionDenied || !strings.Contains(st.Message(), perm.Name+" requires role "+perm.Role.String()) ||
						!strings.Contains(st.Message(), "with role "+role.String()) {
						t.Fatalf("as %s: %v, want PERMISSION_DENIED naming %s", role, err, perm.Name)
					}
					return
				}
				if st.Code() == codes.PermissionDenied || st.Code() == codes.Unauthenticated {
					t.Fatalf("as %s: refused: %v", role, err)
				}
			})
		}
	}
	// Spot checks of the issue's table, independent of auth.Policy.
	for _, c := range []struct {
		role   auth.Role
		method string
		denied bool
	}{
		{auth.Viewer, "/ember.v1.ModelService/Load", true},
		{auth.Viewer, "/ember.v1.DeviceService/Info", false},
		{auth.Technician, "/ember.v1.JobService/Cancel", false},
		{auth.Technician, "/ember.v1.PipelineService/Reload", true},
		{auth.Operator, "/ember.v1.ModelService/Unload", false},
		{auth.Operator, "/ember.v1.UpdateService/Rollback", true},
		{auth.Operator, "/ember.v1.AuthService/CreateToken", true},
		{auth.Admin, "/ember.v1.UpdateService/Rollback", false},
	} {
		if err := call(conns[c.role], c.method, false); (status.Code(err) == codes.PermissionDenied) != c.denied {
			t.Errorf("%s calling %s: %v, denied want %v", c.role, c.method, err, c.denied)
		}
	}
	// The policy's audit trail names denials.
	recs, err := a.st.AuditEntries(0, 1000)
	if err != nil || len(recs) == 0 || !strings.Contains(string(recs[0].Data), `"auth.denied"`) ||
		!strings.Contains(string(recs[0].Data), "via unix socket") || !strings.Contains(string(recs[0].Data), `"rpc":"/ember.v1.`) {
		t.Fatalf("audit of denials: %d entries, %v", len(recs), err)
	}
}

func TestWhoAmIAndRecordVisibility(t *testing.T) {
	a := serveAuth(t, "grpc: {socket: ember.sock}\n", rolesYAML)
	ctx := context.Background()
	me, err := emberv1.NewAuthServiceClient(a.as(t, 1003, 50)).WhoAmI(ctx, &emberv1.WhoAmIRequest{})
	if err != nil || me.Role != "operator" || me.Uid != 1003 || me.Gid != 50 || me.Kind != "unix" {
		t.Fatalf("WhoAmI: %v %v", me, err)
	}
	for _, r := range []store.Record{
		{Kind: "result", Classification: store.ClassShared}, {Kind: "result", Classification: store.ClassLocal},
		{Kind: store.KindAudit, Classification: store.ClassShared},
	} {
		if _, err := a.st.Append(ctx, r, func(*store.Record) error { return nil }, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	for role, want := range map[auth.Role][]uint64{auth.Viewer: {1}, auth.Technician: {1}, auth.Operator: {1, 2}, auth.Admin: {1, 2, 3}} {
		c := emberv1.NewOutboxServiceClient(a.as(t, roleUIDs[role], 0))
		res, err := c.List(ctx, &emberv1.ListRecordsRequest{Limit: 1})
		var got []uint64
		for after := uint64(0); err == nil && len(res.Records) > 0; {
			got = append(got, res.Records[0].Seq)
			after = res.Records[0].Seq
			res, err = c.List(ctx, &emberv1.ListRecordsRequest{Limit: 1, AfterSeq: after})
		}
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s lists records %v (%v), want %v", role, got, err, want)
		}
		_, err = c.Get(ctx, &emberv1.GetRecordRequest{Seq: 2})
		if hidden := status.Code(err) == codes.NotFound; hidden != !auth.ReadLocal.Allows(role) {
			t.Errorf("%s getting a local record: %v", role, err)
		}
	}
	// Inspecting a file by path is for operators.
	_, err = emberv1.NewModelServiceClient(a.as(t, 1002, 0)).Inspect(ctx, &emberv1.InspectModelRequest{Target: &emberv1.InspectModelRequest_Path{Path: "/etc/passwd"}})
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "models.inspect_path") {
		t.Errorf("technician inspecting a path: %v", err)
	}
}

func TestLimits(t *testing.T) {
	a := serveAuth(t, "grpc: {socket: ember.sock, max_recv_msg_size: 4KiB}\n",
		"auth:\n  roles: {technician: [uid:1002, uid:1003]}\n  max_tokens: {technician: 16}\n  max_streams: {technician: 1}\n")
	ctx := context.Background()
	infer := emberv1.NewInferenceServiceClient(a.as(t, 1002, 0))
	_, _, err := collect(t, mustStream(t)(infer.Generate(ctx, &emberv1.GenerateRequest{Prompt: "hi", Params: greedy(17)})))
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "auth.max_tokens.technician (16)") {
		t.Fatalf("max_tokens over the cap: %v", err)
	}
	_, done, err := collect(t, mustStream(t)(infer.Generate(ctx, &emberv1.GenerateRequest{Prompt: "hi", Params: endless(0)})))
	if err != nil || done.CompletionTokens > 16 {
		t.Fatalf("default max_tokens under the cap: %v %v", done, err)
	}
	// One inference call at a time for this technician; another uid is
	// not held by it. (Through authorize, as the interceptors call it: a
	// real stream on the tiny model ends too soon to hold the slot.)
	pctx := func(uid int) context.Context {
		return peer.NewContext(ctx, &peer.Peer{AuthInfo: unixPeer{UID: uid, Known: true}})
	}
	const generate = "/ember.v1.InferenceService/Generate"
	_, release, err := a.srv.authorize(pctx(1002), generate)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.srv.authorize(pctx(1002), generate); status.Code(err) != codes.ResourceExhausted ||
		!strings.Contains(err.Error(), "concurrent inference calls 2 is over auth.max_streams.technician (1)") {
		t.Fatalf("second stream: %v", err)
	}
	_, r2, err := a.srv.authorize(pctx(1003), generate)
	if err != nil {
		t.Fatalf("another technician uid held by the first: %v", err)
	}
	r2()
	release()
	if _, r3, err := a.srv.authorize(pctx(1002), generate); err != nil {
		t.Fatalf("after release: %v", err)
	} else {
		r3()
	}
	// A request over grpc.max_recv_msg_size.
	_, err = infer.Tokenize(ctx, &emberv1.TokenizeRequest{Text: strings.Repeat("x", 8<<10)})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("large request: %v", err)
	}
}

func mustStream(t *testing.T) func(grpc.ServerStreamingClient[emberv1.GenerateResponse], error) grpc.ServerStreamingClient[emberv1.GenerateResponse] {
	return func(s grpc.ServerStreamingClient[emberv1.GenerateResponse], err error) grpc.ServerStreamingClient[emberv1.GenerateResponse] {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func TestTCPCertificatesAndTokens(t *testing.T) {
	certDir := t.TempDir()
	ca := tlstest.NewCA(t, certDir)
	srvCert, srvKey := ca.Issue(t, "server")
	hmiCert, hmiKey := ca.Issue(t, "line3-hmi", x509.ExtKeyUsageClientAuth)
	otherCert, otherKey := ca.Issue(t, "other", x509.ExtKeyUsageClientAuth)
	ctx := context.Background()
	tlsConn := func(t *testing.T, addr string, cert, key string, token string) *grpc.ClientConn {
		tc, err := tlsconf.Client{CA: ca.File, Cert: cert, Key: key, ServerName: "localhost"}.Config()
		if err != nil {
			t.Fatal(err)
		}
		opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(tc))}
		if token != "" {
			opts = append(opts, grpc.WithPerRPCCredentials(testToken(token)))
		}
		conn, err := grpc.NewClient(addr, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}

	t.Run("mTLS", func(t *testing.T) {
		a := serveAuth(t, "grpc: {socket: ember.sock, tcp: \"127.0.0.1:0\", tls: {cert: "+srvCert+", key: "+srvKey+", client_ca: "+ca.File+"}}\n",
			"auth: {roles: {operator: [cert:line3-hmi]}}\n")
		me, err := emberv1.NewAuthServiceClient(tlsConn(t, a.tcp, hmiCert, hmiKey, "")).WhoAmI(ctx, &emberv1.WhoAmIRequest{})
		if err != nil || me.Kind != "certificate" || me.CertName != "line3-hmi" || me.Role != "operator" {
			t.Fatalf("WhoAmI with line3-hmi: %v %v", me, err)
		}
		_, err = emberv1.NewModelServiceClient(tlsConn(t, a.tcp, otherCert, otherKey, "")).Unload(ctx, &emberv1.UnloadModelRequest{Name: "tiny"})
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "you are certificate CN=other with role viewer") {
			t.Fatalf("unmapped certificate unloading: %v", err)
		}
		// Reflection is not served on TCP.
		if err := call(tlsConn(t, a.tcp, hmiCert, hmiKey, ""), "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", true); status.Code(err) != codes.Unimplemented {
			t.Fatalf("reflection over TCP: %v", err)
		}
	})

	t.Run("tokens", func(t *testing.T) {
		a := serveAuth(t, "grpc: {socket: ember.sock, tcp: \"127.0.0.1:0\", tls: {cert: "+srvCert+", key: "+srvKey+"}}\n", "")
		admin := emberv1.NewAuthServiceClient(a.as(t, 0, 0))
		mk := func(name, role string, secs int64) string {
			res, err := admin.CreateToken(ctx, &emberv1.CreateTokenRequest{Name: name, Role: role, ExpiresInSeconds: secs})
			if err != nil {
				t.Fatal(err)
			}
			return res.Token
		}
		good, short, revoked := mk("ci", "technician", 0), mk("short", "admin", 1), mk("gone", "admin", 0)
		if _, err := admin.RevokeToken(ctx, &emberv1.RevokeTokenRequest{Name: "gone"}); err != nil {
			t.Fatal(err)
		}
		me, err := emberv1.NewAuthServiceClient(tlsConn(t, a.tcp, "", "", good)).WhoAmI(ctx, &emberv1.WhoAmIRequest{})
		if err != nil || me.Kind != "token" || me.TokenName != "ci" || me.Role != "technician" {
			t.Fatalf("WhoAmI with a token: %v %v", me, err)
		}
		time.Sleep(1100 * time.Millisecond)
		for _, c := range []struct{ name, token, want string }{
			{"expired", short, "token expired"},
			{"revoked", revoked, "token revoked"},
			{"wrong", flipSecret(good), "unknown token"},
			{"malformed", "hunter2", "not an ember token"},
			{"missing", "", "needs an identity"},
		} {
			t.Run(c.name, func(t *testing.T) {
				_, err := emberv1.NewDeviceServiceClient(tlsConn(t, a.tcp, "", "", c.token)).Info(ctx, &emberv1.InfoRequest{})
				if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("%v, want UNAUTHENTICATED with %q", err, c.want)
				}
			})
		}
		// Health stays open to callers without an identity.
		if err := call(tlsConn(t, a.tcp, "", "", ""), "/grpc.health.v1.Health/Check", false); err != nil {
			t.Fatalf("health without identity: %v", err)
		}
	})

	t.Run("token over plaintext", func(t *testing.T) {
		a := serveAuth(t, "grpc: {socket: ember.sock, tcp: \"127.0.0.1:0\", insecure: true, allow_unauthenticated_tcp: true}\n", "")
		conn, _ := grpc.NewClient(a.tcp, grpc.WithTransportCredentials(insecure.NewCredentials()))
		defer conn.Close()
		octx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer ember_x")
		if _, err := emberv1.NewDeviceServiceClient(conn).Info(octx, &emberv1.InfoRequest{}); status.Code(err) != codes.Unauthenticated ||
			!strings.Contains(err.Error(), "without TLS") {
			t.Fatalf("token over plaintext: %v", err)
		}
		me, err := emberv1.NewAuthServiceClient(conn).WhoAmI(ctx, &emberv1.WhoAmIRequest{})
		if err != nil || me.Kind != "anonymous" || me.Role != "viewer" {
			t.Fatalf("anonymous over allowed plaintext: %v %v", me, err)
		}
	})
}

// flipSecret changes the first character of a token's secret.
func flipSecret(tok string) string {
	i := len("ember_") + 16 + 1
	c := byte('A')
	if tok[i] == 'A' {
		c = 'B'
	}
	return tok[:i] + string(c) + tok[i+1:]
}

type testToken string

func (t testToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}
func (testToken) RequireTransportSecurity() bool { return true }

// TestRealUID runs this test binary as nobody (uid 65534), a real other
// uid the kernel reports through SO_PEERCRED, against a server with the
// production peer credentials.
func TestRealUID(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a process as nobody")
	}
	dir, err := os.MkdirTemp("", "ember-auth-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	exe, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "api.test")
	if err := os.WriteFile(bin, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte("device_id: auth\nstate_dir: state\ngrpc: {socket: "+filepath.Join(dir, "ember.sock")+", socket_mode: \"0666\"}\n"+
		"auth: {roles: {technician: [uid:65534]}}\n"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(cfg.DBPath(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv, err := New(Deps{Config: cfg, Registry: models.New(st, nil, cfg.ModelStoreDir()), Store: st,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, time.Second); close(done) }()
	defer func() { cancel(); <-done }()

	cmd := exec.Command(bin, "-test.run", "^TestHelperAsOtherUID$")
	cmd.Env = append(os.Environ(), "EMBER_AUTH_HELPER_SOCKET="+cfg.GRPC.Socket)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	for _, want := range []string{"whoami: unix uid 65534 technician", "load: PermissionDenied: models.load requires role operator; you are uid 65534"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("helper output lacks %q:\n%s", want, out)
		}
	}
}

// TestHelperAsOtherUID is TestRealUID's client, run as another uid.
func TestHelperAsOtherUID(t *testing.T) {
	sock := os.Getenv("EMBER_AUTH_HELPER_SOCKET")
	if sock == "" {
		t.Skip("run by TestRealUID")
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	me, err := emberv1.NewAuthServiceClient(conn).WhoAmI(ctx, &emberv1.WhoAmIRequest{})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("whoami: %s uid %d %s\n", me.Kind, me.Uid, me.Role)
	_, err = emberv1.NewModelServiceClient(conn).Load(ctx, &emberv1.LoadModelRequest{Name: "x"})
	st := status.Convert(err)
	fmt.Printf("load: %s: %s\n", st.Code(), st.Message())
}
