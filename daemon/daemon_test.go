package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/internal/testkit"
	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
)

// A component that keeps failing (here a link whose peer resets every
// connection) is restarted with backoff, counted in status, and the
// daemon keeps serving inference over gRPC and ingest over MQTT all the
// while.
func TestTheDaemonServesWhileAFailedComponentRestarts(t *testing.T) {
	link := component{name: "flaky-link", run: func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(20 * time.Millisecond):
			return errors.New("connection reset by peer")
		}
	}}
	ctx := context.Background()
	conn, broker := startDaemon(t, Options{extra: []component{link}})
	dev := emberv1.NewDeviceServiceClient(conn)
	flaky := func() *emberv1.Component {
		info, err := dev.Info(ctx, &emberv1.InfoRequest{}, grpc.WaitForReady(true))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range info.Components {
			if c.Name == "flaky-link" {
				return c
			}
		}
		t.Fatalf("status lists no flaky-link among %v", info.Components)
		return nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for flaky().Restarts < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the failing component was not restarted twice")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if c := flaky(); c.LastError != "connection reset by peer" || c.LastFailure == nil {
		t.Fatalf("status = %v, want the last error and when", c)
	}

	// Inference over gRPC.
	stream, err := emberv1.NewInferenceServiceClient(conn).Generate(ctx, &emberv1.GenerateRequest{Prompt: "The pump", Params: &emberv1.SamplingParams{MaxTokens: 4}})
	if err != nil {
		t.Fatal(err)
	}
	for {
		r, err := stream.Recv()
		if err != nil {
			t.Fatalf("generate while a component restarts: %v", err)
		}
		if r.Done != nil {
			break
		}
	}

	// Ingest over MQTT: a message becomes a published result.
	results := make(chan string, 1)
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + broker).SetClientID("plc-1"))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect to the embedded broker: %v", tok.Error())
	}
	defer c.Disconnect(100)
	c.Subscribe("ember/v1/press-07/result/notes", 1, func(_ paho.Client, m paho.Message) { results <- string(m.Payload()) }).Wait()
	if tok := c.Publish("plant/notes", 1, false, "valve 3 leaks"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	select {
	case r := <-results:
		if !strings.Contains(r, `"pipeline":"notes"`) {
			t.Fatalf("result = %s", r)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no result while a component restarts")
	}
}

// testConfig runs a tiny model with a gRPC socket, an embedded broker
// and a notes pipeline.
const testConfig = `version: 1
device_id: press-07
state_dir: %s
shutdown_timeout: 2s
llama: {lib_dir: %s}
grpc: {socket: %s}
metrics: {listen: ""}
engine: {threads: 1}
models: [{name: tiny, path: %s, default: true}]
mqtt: {embedded: {listen: %q}}
pipelines:
  - {name: notes, match: plant/notes, decode: text, prompt: "Summarise: {{.text}}", max_tokens: 4}
`

// startDaemon writes the config, runs the daemon until the test ends and
// returns a connection to its socket and its broker's address.
func startDaemon(t *testing.T, opts Options) (*grpc.ClientConn, string) {
	t.Helper()
	sockDir, err := os.MkdirTemp("", "emberd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	port, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	broker := fmt.Sprintf("127.0.0.1:%d", port)
	socket := filepath.Join(sockDir, "ember.sock")
	dir := t.TempDir()
	doc := fmt.Appendf(nil, testConfig, filepath.Join(dir, "state"), testkit.LibDir(t), socket, testkit.TinyModel(t), broker)
	if opts.ConfigPath != "" {
		if err := os.WriteFile(opts.ConfigPath, doc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Parse(doc, dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, opts, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	return conn, broker
}

// A SIGHUP reload is an administrative action like a reload over gRPC:
// it leaves an audit entry naming what asked for it, in a chain that
// verifies.
func TestASighupReloadIsAudited(t *testing.T) {
	reload := make(chan struct{})
	cfgPath := filepath.Join(t.TempDir(), "ember.yaml")
	conn, _ := startDaemon(t, Options{ConfigPath: cfgPath, Reload: reload})
	ctx := context.Background()
	if _, err := emberv1.NewDeviceServiceClient(conn).Info(ctx, &emberv1.InfoRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatal(err)
	}
	reload <- struct{}{}
	al := emberv1.NewAuditServiceClient(conn)
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := al.List(ctx, &emberv1.ListAuditRequest{Action: "pipelines.reload"})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Entries) > 0 {
			e := res.Entries[0]
			if e.Actor != "SIGHUP" || !strings.Contains(e.DetailsJson, `"notes"`) {
				t.Fatalf("audit entry = %+v, want actor SIGHUP and the pipelines", e)
			}
			v, err := al.Verify(ctx, &emberv1.VerifyAuditRequest{})
			if err != nil || !v.Ok || v.Entries < 3 {
				t.Fatalf("verify = %+v, %v; want ok over daemon.start, audit.key and the reload", v, err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no audit record of the SIGHUP reload")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
