package api

import (
	"context"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/ember-edge/ember/daemon/audit"
	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/daemon/engine"
	"github.com/ember-edge/ember/daemon/models"
	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/daemon/synth"
	"github.com/ember-edge/ember/internal/testkit"
	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
)

// harness is a daemon's API served on a real unix socket, with a client.
type harness struct {
	cfg    *config.Config
	eng    *engine.Engine
	reg    *models.Registry
	st     *store.Store
	conn   *grpc.ClientConn
	infer  emberv1.InferenceServiceClient
	models emberv1.ModelServiceClient
	device emberv1.DeviceServiceClient
}

type harnessOpts struct {
	queue   int
	context int
	spec    synth.Spec
	// audit, when set, serves an audit log with inference metadata on.
	audit bool
}

func start(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	dir := t.TempDir()
	if o.spec.EmbeddingLength == 0 {
		o.spec = synth.Tiny
	}
	modelPath := testkit.WriteModel(t, o.spec)
	cfg, err := config.Parse([]byte(`
device_id: test-device
state_dir: state
grpc: {socket: ember.sock}
models:
  - {name: tiny, path: `+modelPath+`, default: true}
  - {name: spare, path: `+modelPath+`, load: false}
`), dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(cfg.DBPath(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	eng, err := engine.New(engine.Options{LibDir: testkit.LibDir(t), Threads: 1, QueueSize: o.queue, Context: o.context})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Close)
	if _, err := eng.Load(engine.ModelSpec{Name: "tiny", Path: modelPath}); err != nil {
		t.Fatal(err)
	}
	reg := models.New(st, cfg.Models, cfg.ModelStoreDir())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var al *audit.Log
	if o.audit {
		key, _, err := audit.LoadKey(cfg.AuditKeyPath())
		if err != nil {
			t.Fatal(err)
		}
		al = audit.New(audit.Options{Store: st, Key: key, DeviceID: cfg.DeviceID, Inference: true})
	}
	srv, err := New(Deps{Config: cfg, Engine: eng, Registry: reg, Logger: log, Store: st, Audit: al,
		Device: func() *emberv1.InfoResponse { return &emberv1.InfoResponse{DeviceId: cfg.DeviceID} }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, 2*time.Second) }()
	conn, err := grpc.NewClient("unix://"+cfg.GRPC.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &harness{
		cfg: cfg, eng: eng, reg: reg, conn: conn, st: st,
		infer:  emberv1.NewInferenceServiceClient(conn),
		models: emberv1.NewModelServiceClient(conn),
		device: emberv1.NewDeviceServiceClient(conn),
	}
}

func greedy(maxTokens int32) *emberv1.SamplingParams {
	zero := float32(0)
	return &emberv1.SamplingParams{MaxTokens: maxTokens, Temperature: &zero}
}

// endless is greedy decoding that runs to max_tokens, for requests that
// must stay busy while a test watches.
func endless(maxTokens int32) *emberv1.SamplingParams {
	p := greedy(maxTokens)
	p.IgnoreEos = true
	return p
}

// collect reads a generation stream to its end.
func collect(t *testing.T, stream grpc.ServerStreamingClient[emberv1.GenerateResponse]) ([]string, *emberv1.Completion, error) {
	t.Helper()
	var pieces []string
	var done *emberv1.Completion
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			return pieces, done, nil
		}
		if err != nil {
			return pieces, done, err
		}
		if done != nil {
			t.Fatal("a message arrived after the completion summary")
		}
		if msg.Done != nil {
			done = msg.Done
		} else {
			pieces = append(pieces, msg.Text)
		}
	}
}

func (h *harness) generate(t *testing.T, req *emberv1.GenerateRequest) (string, *emberv1.Completion) {
	t.Helper()
	stream, err := h.infer.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	pieces, done, err := collect(t, stream)
	if err != nil {
		t.Fatal(err)
	}
	if done == nil {
		t.Fatal("stream ended without a completion summary")
	}
	return strings.Join(pieces, ""), done
}

func TestGenerateStreamsInOrderAndEndsWithASummary(t *testing.T) {
	h := start(t, harnessOpts{})
	req := &emberv1.GenerateRequest{Prompt: "the pump on line three", Params: greedy(24)}
	text1, done := h.generate(t, req)
	text2, _ := h.generate(t, req)
	if text1 != text2 || text1 == "" {
		t.Fatalf("greedy over gRPC not deterministic:\n%q\n%q", text1, text2)
	}
	if done.Model != "tiny" || done.CompletionTokens == 0 || done.PromptTokens == 0 || done.Duration.AsDuration() <= 0 {
		t.Fatalf("summary %+v", done)
	}
	// The same request straight through the engine streams the same text.
	m, _ := h.eng.Model("tiny")
	var direct strings.Builder
	zero := float32(0)
	if _, err := m.Generate(context.Background(), engine.Request{Prompt: req.Prompt, MaxTokens: 24, Sampling: engine.Sampling{Temperature: zero}},
		func(s string) error { direct.WriteString(s); return nil }); err != nil {
		t.Fatal(err)
	}
	if direct.String() != text1 {
		t.Fatalf("gRPC and engine disagree:\n%q\n%q", text1, direct.String())
	}
}

func TestGenerateHonoursMaxTokensAndStopStrings(t *testing.T) {
	h := start(t, harnessOpts{})
	_, done := h.generate(t, &emberv1.GenerateRequest{Prompt: "hello", Params: greedy(7)})
	if done.CompletionTokens > 7 {
		t.Fatalf("%d tokens for max_tokens 7", done.CompletionTokens)
	}
	full, _ := h.generate(t, &emberv1.GenerateRequest{Prompt: "the quick brown fox", Params: greedy(60)})
	stop := strings.Fields(full)[len(strings.Fields(full))/2]
	p := greedy(60)
	p.Stop = []string{stop}
	text, done := h.generate(t, &emberv1.GenerateRequest{Prompt: "the quick brown fox", Params: p})
	if want := full[:strings.Index(full, stop)]; text != want {
		t.Fatalf("stop %q: got %q want %q", stop, text, want)
	}
	if done.FinishReason != emberv1.FinishReason_FINISH_REASON_STOP || done.Stop != stop {
		t.Fatalf("summary %+v", done)
	}
}

func TestSeededSamplingOverGRPCIsReproducible(t *testing.T) {
	h := start(t, harnessOpts{})
	temp, seed := float32(0.9), uint32(1234)
	req := &emberv1.GenerateRequest{Prompt: "valve", Params: &emberv1.SamplingParams{MaxTokens: 20, Temperature: &temp, Seed: &seed}}
	a, _ := h.generate(t, req)
	b, _ := h.generate(t, req)
	if a != b {
		t.Fatalf("same seed, different output:\n%q\n%q", a, b)
	}
}

func TestCancellingMidStreamStopsTheServer(t *testing.T) {
	h := start(t, harnessOpts{context: 4096, spec: longTiny()})
	m, _ := h.eng.Model("tiny")
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := h.infer.Generate(ctx, &emberv1.GenerateRequest{Prompt: "a long story", Params: endless(4000)})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := stream.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	// Messages already received may still be read; then the stream ends.
	for err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Canceled {
		t.Fatalf("Recv after cancel: %v", err)
	}
	waitIdle(t, m)
	if s := m.Stats(); s.Cancelled != 1 || s.Tokens >= 4000 {
		t.Fatalf("server did not stop decoding on cancel: %+v", s)
	}
	// A client that disconnects without cancelling is noticed the same way.
	stream, err = h.infer.Generate(context.Background(), &emberv1.GenerateRequest{Prompt: "another story", Params: endless(4000)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	h.conn.Close()
	waitIdle(t, m)
	if s := m.Stats(); s.Cancelled != 2 {
		t.Fatalf("a disconnected client's request kept running: %+v", s)
	}
}

func waitIdle(t *testing.T, m *engine.Model) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s := m.Stats(); s.Active > 0 || s.QueueDepth > 0; s = m.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("model still busy: %+v", s)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func longTiny() synth.Spec {
	s := synth.Tiny
	s.ContextLength = 4096
	return s
}

func TestConcurrentClientsQueueAndAFullQueueIsRefused(t *testing.T) {
	h := start(t, harnessOpts{queue: 2, context: 4096, spec: longTiny()})
	m, _ := h.eng.Model("tiny")

	// Three short requests at once fit: one decoding, two queued.
	var wg sync.WaitGroup
	results := make([]string, 3)
	for i := range results {
		wg.Go(func() { results[i], _ = h.generate(t, &emberv1.GenerateRequest{Prompt: "pump", Params: greedy(16)}) })
	}
	wg.Wait()
	for i, r := range results {
		if r != results[0] {
			t.Errorf("client %d got %q, client 0 %q", i, r, results[0])
		}
	}

	// One long request holds the model; two wait; the next is refused.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	long, err := h.infer.Generate(ctx, &emberv1.GenerateRequest{Prompt: "a long story", Params: endless(4000)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := long.Recv(); err != nil {
		t.Fatal(err)
	}
	var waiting []grpc.ServerStreamingClient[emberv1.GenerateResponse]
	for range 2 {
		s, err := h.infer.Generate(context.Background(), &emberv1.GenerateRequest{Prompt: "queued", Params: greedy(4)})
		if err != nil {
			t.Fatal(err)
		}
		waiting = append(waiting, s)
	}
	for m.Stats().QueueDepth != 2 {
		time.Sleep(time.Millisecond)
	}
	refused, err := h.infer.Generate(context.Background(), &emberv1.GenerateRequest{Prompt: "one too many", Params: greedy(4)})
	if err == nil {
		_, _, err = collect(t, refused)
	}
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "queue is full") {
		t.Fatalf("request over the queue: %v, want RESOURCE_EXHAUSTED saying the queue is full", err)
	}
	cancel()
	for i, s := range waiting {
		if _, done, err := collect(t, s); err != nil || done == nil {
			t.Errorf("queued request %d: %v", i, err)
		}
	}
}

func TestEmbedReturnsUnitVectorsOfTheModelsDimension(t *testing.T) {
	h := start(t, harnessOpts{})
	resp, err := h.infer.Embed(context.Background(), &emberv1.EmbedRequest{Inputs: []string{"motor overheating", "door open"}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Dimensions != int32(synth.Tiny.EmbeddingLength) || len(resp.Embeddings) != 2 {
		t.Fatalf("dimensions %d, %d vectors", resp.Dimensions, len(resp.Embeddings))
	}
	for _, e := range resp.Embeddings {
		var sum float64
		for _, x := range e.Values {
			sum += float64(x) * float64(x)
		}
		if len(e.Values) != int(resp.Dimensions) || math.Abs(sum-1) > 1e-3 {
			t.Fatalf("vector of %d values with squared norm %f", len(e.Values), sum)
		}
	}
}

func TestChatAppliesTheChatTemplate(t *testing.T) {
	h := start(t, harnessOpts{})
	stream, err := h.infer.Chat(context.Background(), &emberv1.ChatRequest{
		Messages:     []*emberv1.ChatMessage{{Role: "user", Content: "status of press 4?"}},
		Params:       greedy(8),
		ReturnPrompt: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, done, err := collect(t, stream)
	if err != nil {
		t.Fatal(err)
	}
	if want := "<|im_start|>user\nstatus of press 4?<|im_end|>\n<|im_start|>assistant\n"; done.Prompt != want {
		t.Fatalf("prompt %q, want %q", done.Prompt, want)
	}
}

func TestTokenize(t *testing.T) {
	h := start(t, harnessOpts{})
	resp, err := h.infer.Tokenize(context.Background(), &emberv1.TokenizeRequest{Text: "the quick brown fox"})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Tokens) != 4 || resp.Tokens[3].Piece != " fox" {
		t.Fatalf("tokens %v", resp.Tokens)
	}
}

// TestBadInputGetsAStatusThatSaysWhatToDo is the table of wrong calls: each
// gets the code that means what went wrong and a message naming it, and
// the daemon keeps serving.
func TestBadInputGetsAStatusThatSaysWhatToDo(t *testing.T) {
	h := start(t, harnessOpts{})
	dir := t.TempDir()
	notGGUF := filepath.Join(dir, "notes.txt")
	os.WriteFile(notGGUF, []byte("just text"), 0o644)
	valid, _ := os.ReadFile(h.cfg.Models[0].Path)
	truncated := filepath.Join(dir, "trunc.gguf")
	os.WriteFile(truncated, valid[:len(valid)/3], 0o644)
	ctx := context.Background()
	gen := func(req *emberv1.GenerateRequest) error {
		s, err := h.infer.Generate(ctx, req)
		if err != nil {
			return err
		}
		_, _, err = collect(t, s)
		return err
	}
	tests := []struct {
		name string
		call func() error
		code codes.Code
		msg  string
	}{
		{"empty prompt", func() error { return gen(&emberv1.GenerateRequest{Prompt: ""}) }, codes.InvalidArgument, "prompt is empty"},
		{"prompt over the byte limit", func() error { return gen(&emberv1.GenerateRequest{Prompt: strings.Repeat("x", 300<<10)}) }, codes.InvalidArgument, "engine.max_prompt_bytes"},
		{"prompt longer than the context", func() error {
			return gen(&emberv1.GenerateRequest{Prompt: strings.Repeat("pump valve ", 400)})
		}, codes.InvalidArgument, "context holds"},
		{"unknown model", func() error { return gen(&emberv1.GenerateRequest{Model: "gpt-9", Prompt: "x"}) }, codes.NotFound, "emberctl models ls"},
		{"known model not loaded", func() error { return gen(&emberv1.GenerateRequest{Model: "spare", Prompt: "x"}) }, codes.FailedPrecondition, "emberctl models load spare"},
		{"bad sampling", func() error {
			p := float32(3)
			return gen(&emberv1.GenerateRequest{Prompt: "x", Params: &emberv1.SamplingParams{TopP: &p}})
		}, codes.InvalidArgument, "top_p"},
		{"chat without messages", func() error {
			s, err := h.infer.Chat(ctx, &emberv1.ChatRequest{})
			if err == nil {
				_, _, err = collect(t, s)
			}
			return err
		}, codes.InvalidArgument, "no messages"},
		{"inspect a text file", func() error {
			_, err := h.models.Inspect(ctx, &emberv1.InspectModelRequest{Target: &emberv1.InspectModelRequest_Path{Path: notGGUF}})
			return err
		}, codes.InvalidArgument, "not a GGUF"},
		{"inspect a missing file", func() error {
			_, err := h.models.Inspect(ctx, &emberv1.InspectModelRequest{Target: &emberv1.InspectModelRequest_Path{Path: dir + "/nope.gguf"}})
			return err
		}, codes.NotFound, "nope.gguf"},
		{"import a truncated file", func() error {
			s, err := h.models.Import(ctx, &emberv1.ImportModelRequest{Path: truncated})
			for err == nil {
				_, err = s.Recv()
			}
			return err
		}, codes.InvalidArgument, "truncated"},
		{"load an unknown model", func() error { _, err := h.models.Load(ctx, &emberv1.LoadModelRequest{Name: "gpt-9"}); return err }, codes.NotFound, "gpt-9"},
		{"load a loaded model", func() error { _, err := h.models.Load(ctx, &emberv1.LoadModelRequest{Name: "tiny"}); return err }, codes.AlreadyExists, "already loaded"},
		{"unload a model that is not loaded", func() error { _, err := h.models.Unload(ctx, &emberv1.UnloadModelRequest{Name: "spare"}); return err }, codes.FailedPrecondition, "not loaded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if status.Code(err) != tt.code || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %v; want %s mentioning %q", err, tt.code, tt.msg)
			}
		})
	}
	if text, _ := h.generate(t, &emberv1.GenerateRequest{Prompt: "still serving?", Params: greedy(4)}); text == "" {
		t.Fatal("daemon stopped serving after bad input")
	}
}

func TestNoModelLoadedIsAFailedPrecondition(t *testing.T) {
	h := start(t, harnessOpts{})
	if _, err := h.models.Unload(context.Background(), &emberv1.UnloadModelRequest{Name: "tiny"}); err != nil {
		t.Fatal(err)
	}
	s, err := h.infer.Generate(context.Background(), &emberv1.GenerateRequest{Prompt: "x"})
	if err == nil {
		_, _, err = collect(t, s)
	}
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "no model is loaded") {
		t.Fatalf("generate with nothing loaded: %v", err)
	}
}

func TestModelLifecycle(t *testing.T) {
	h := start(t, harnessOpts{})
	ctx := context.Background()
	list, err := h.models.List(ctx, &emberv1.ListModelsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Models) != 2 || !list.Models[1].Loaded || !list.Models[1].Default || list.Models[0].Loaded {
		t.Fatalf("list %v", list.Models)
	}
	if _, err := h.models.Load(ctx, &emberv1.LoadModelRequest{Name: "spare", Context: 512}); err != nil {
		t.Fatal(err)
	}
	text, done := h.generate(t, &emberv1.GenerateRequest{Model: "spare", Prompt: "hello", Params: greedy(4)})
	if text == "" || done.Model != "spare" {
		t.Fatalf("spare answered %q (%s)", text, done.Model)
	}
	insp, err := h.models.Inspect(ctx, &emberv1.InspectModelRequest{Target: &emberv1.InspectModelRequest_Name{Name: "spare"}})
	if err != nil {
		t.Fatal(err)
	}
	if md := insp.Metadata; md.Architecture != "llama" || md.EmbeddingLength != uint64(synth.Tiny.EmbeddingLength) ||
		md.ChatTemplate == "" || md.Kv["general.architecture"] != "llama" {
		t.Fatalf("metadata %+v", md)
	}
	if _, err := h.models.Unload(ctx, &emberv1.UnloadModelRequest{Name: "spare"}); err != nil {
		t.Fatal(err)
	}
}

func TestImportCopiesHashesAndRegisters(t *testing.T) {
	h := start(t, harnessOpts{})
	src := testkit.WriteModel(t, synth.Tiny)
	stream, err := h.models.Import(context.Background(), &emberv1.ImportModelRequest{Path: src, Name: "imported"})
	if err != nil {
		t.Fatal(err)
	}
	var phases []string
	var model *emberv1.Model
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if p := msg.GetProgress(); p != nil {
			phases = append(phases, p.Phase)
		}
		if m := msg.GetModel(); m != nil {
			model = m
		}
	}
	if model == nil || !strings.Contains(strings.Join(phases, ","), "copying") {
		t.Fatalf("no model or no progress: phases %v", phases)
	}
	want := testkit.SHA256File(t, src)
	if model.Sha256 != want || model.Source != "store" || filepath.Dir(model.Path) != h.cfg.ModelStoreDir() {
		t.Fatalf("imported %+v; want sha256 %s in the store", model, want)
	}
	if got := testkit.SHA256File(t, model.Path); got != want {
		t.Fatalf("stored copy hashes to %s, want %s", got, want)
	}
	// The same name again is refused unless replacing.
	stream, _ = h.models.Import(context.Background(), &emberv1.ImportModelRequest{Path: src, Name: "imported"})
	for err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.AlreadyExists {
		t.Fatalf("import over an existing name: %v", err)
	}
	if _, err := h.models.Load(context.Background(), &emberv1.LoadModelRequest{Name: "imported"}); err != nil {
		t.Fatalf("load the imported model: %v", err)
	}
}

func TestDeviceInfoHealthAndReflection(t *testing.T) {
	h := start(t, harnessOpts{})
	info, err := h.device.Info(context.Background(), &emberv1.InfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if info.DeviceId != "test-device" || len(info.LoadedModels) != 1 || info.LoadedModels[0].Name != "tiny" {
		t.Fatalf("info %+v", info)
	}
	hc, err := healthpb.NewHealthClient(h.conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || hc.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", hc, err)
	}
}

func TestStaleSocketIsReplacedButALiveOneIsNot(t *testing.T) {
	h := start(t, harnessOpts{})
	if _, err := listenUnix(h.cfg.GRPC.Socket, "0660"); err == nil || !strings.Contains(err.Error(), "already listening") {
		t.Fatalf("second listener on a live socket: %v", err)
	}
	path := filepath.Join(t.TempDir(), "regular-file")
	os.WriteFile(path, nil, 0o644)
	if _, err := listenUnix(path, "0660"); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("listen over a regular file: %v", err)
	}
}
