package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/internal/testkit"
	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
)

// The tests run the real binaries, built once for the package.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ember-e2e-bin-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	for _, cmd := range []string{"emberd", "emberctl"} {
		build := exec.Command("go", "build", "-o", filepath.Join(dir, cmd), "github.com/ember-edge/ember/cmd/"+cmd)
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", cmd, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// deviceID is the device every test's emberd runs as.
const deviceID = "press-07"

// daemonConfig is what differs between the tests' emberd configs.
type daemonConfig struct {
	// StateDir defaults to a directory of the test's own.
	StateDir string
	// MQTT is the mqtt: section; empty means the embedded broker on a
	// free loopback port.
	MQTT string
	// Embedded adds keys to the embedded broker's section (max_payload).
	Embedded string
	// MQTTMore adds keys to the generated mqtt: section (requests: …).
	MQTTMore string
	// Extra is appended at the top level (pipelines:, store:, …).
	Extra string
}

// emberd is an emberd under test, which can be killed and restarted on
// the same state dir.
type emberd struct {
	t        *testing.T
	cfgPath  string
	socket   string
	stateDir string
	// MQTTAddr is the embedded broker's address, empty when disabled.
	MQTTAddr string

	log    *syncBuffer // every run's stderr, one after the other
	runs   int
	cmd    *exec.Cmd
	exited chan error
}

// newEmberd writes a config and starts emberd on it.
func newEmberd(t *testing.T, c daemonConfig) *emberd {
	t.Helper()
	// Unix socket paths are limited to 108 bytes; test temp dirs named
	// after long test names come close.
	sockDir, err := os.MkdirTemp("", "e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	dir := t.TempDir()
	d := &emberd{t: t, socket: filepath.Join(sockDir, "ember.sock"), log: &syncBuffer{}, stateDir: c.StateDir}
	if d.stateDir == "" {
		d.stateDir = filepath.Join(dir, "state")
	}
	mqtt := c.MQTT
	if mqtt == "" {
		port, err := testkit.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		d.MQTTAddr = "127.0.0.1:" + strconv.Itoa(port)
		mqtt = fmt.Sprintf("mqtt:\n  embedded: {listen: %q%s}\n", d.MQTTAddr, c.Embedded)
		if c.MQTTMore != "" {
			mqtt += "  " + c.MQTTMore + "\n"
		}
	}
	cfg := fmt.Sprintf(`version: 1
device_id: %s
state_dir: %s
shutdown_timeout: 2s
llama: {lib_dir: %s}
grpc: {socket: %s}
metrics: {listen: ""}
engine: {threads: 1, queue_size: 8}
models:
  - {name: tiny, path: %s, default: true}
%s%s`, deviceID, d.stateDir, testkit.LibDir(t), d.socket, testkit.TinyModel(t), mqtt, c.Extra)
	d.cfgPath = filepath.Join(dir, "ember.yaml")
	if err := os.WriteFile(d.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if d.cmd != nil {
			d.kill()
		}
		if t.Failed() || os.Getenv("EMBER_E2E_LOG") != "" {
			t.Logf("config:\n%s\nemberd log:\n%s", cfg, d.log)
		}
	})
	d.start()
	return d
}

// start runs emberd and waits until it serves gRPC and, with the embedded
// broker, MQTT.
func (d *emberd) start() {
	d.t.Helper()
	if err := d.tryStart(); err != nil {
		d.t.Fatal(err)
	}
}

// tryStart is start for goroutines other than the test's, which must not
// call t.Fatal.
func (d *emberd) tryStart() error {
	d.runs++
	fmt.Fprintf(d.log, "----- emberd run %d -----\n", d.runs)
	d.cmd = exec.Command(filepath.Join(binDir, "emberd"), "--config", d.cfgPath)
	d.cmd.Stderr, d.cmd.Stdout = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		d.cmd = nil
		return err
	}
	exited := make(chan error, 1)
	d.exited = exited
	cmd := d.cmd
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if d.ready() {
			return nil
		}
		select {
		case err := <-exited:
			d.cmd = nil
			return fmt.Errorf("emberd exited at start (run %d): %v", d.runs, err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("emberd did not come up within 30s (run %d)", d.runs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *emberd) ready() bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn, err := grpc.NewClient("unix://"+d.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return false
	}
	defer conn.Close()
	if _, err := emberv1.NewDeviceServiceClient(conn).Info(ctx, &emberv1.InfoRequest{}); err != nil {
		return false
	}
	if d.MQTTAddr == "" {
		return true
	}
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + d.MQTTAddr).SetClientID("e2e-probe").
		SetConnectTimeout(time.Second).SetAutoReconnect(false))
	tok := c.Connect()
	if !tok.WaitTimeout(2*time.Second) || tok.Error() != nil {
		return false
	}
	c.Disconnect(0)
	return true
}

// kill SIGKILLs emberd and waits for it to be gone.
func (d *emberd) kill() {
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.exited
	d.cmd = nil
}

// stop SIGTERMs emberd and waits for a clean exit.
func (d *emberd) stop() {
	d.t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.exited:
		d.cmd = nil
		if err != nil {
			d.t.Fatalf("emberd exited with %v after SIGTERM", err)
		}
	case <-time.After(20 * time.Second):
		d.t.Fatal("emberd did not stop within 20s of SIGTERM")
	}
}

// running reports whether the process is still alive.
func (d *emberd) running() bool {
	if d.cmd == nil {
		return false
	}
	select {
	case err := <-d.exited:
		d.exited <- err
		return false
	default:
		return true
	}
}

// ctl runs emberctl against the daemon.
func (d *emberd) ctl(args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command(filepath.Join(binDir, "emberctl"), args...)
	cmd.Env = append(os.Environ(), "EMBER_SOCKET="+d.socket)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// grpc returns a client connection to the daemon, closed at cleanup.
func (d *emberd) grpc() *grpc.ClientConn {
	d.t.Helper()
	conn, err := grpc.NewClient("unix://"+d.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { conn.Close() })
	return conn
}

// dbPath is the daemon's database.
func (d *emberd) dbPath() string { return filepath.Join(d.stateDir, "ember.db") }

// waitIdle waits until no job is queued or running.
func (d *emberd) waitIdle(timeout time.Duration) {
	d.t.Helper()
	jobs := emberv1.NewJobServiceClient(d.grpc())
	deadline := time.Now().Add(timeout)
	for {
		busy := 0
		for _, st := range []emberv1.JobState{emberv1.JobState_JOB_STATE_QUEUED, emberv1.JobState_JOB_STATE_RUNNING} {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			resp, err := jobs.List(ctx, &emberv1.ListJobsRequest{State: st, Limit: 1000})
			cancel()
			if err != nil {
				d.t.Fatalf("list jobs: %v", err)
			}
			busy += len(resp.Jobs)
		}
		if busy == 0 {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%d jobs still queued or running after %v", busy, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer that a process writes while the test
// reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// mqttClient connects an MQTT 3.1.1 client with a clean session, as a
// simple PLC or gateway does, and disconnects it at cleanup.
func mqttClient(t *testing.T, addr, id string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).SetOrderMatters(false))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s to %s: %v", id, addr, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// publish sends one QoS 1 message and waits for its PUBACK.
func publish(t *testing.T, c paho.Client, topic string, payload []byte) {
	t.Helper()
	tok := c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("publish to %s: no PUBACK (%v)", topic, tok.Error())
	}
}

// message is one message an inbox received.
type message struct {
	Topic   string
	Payload []byte
	Retain  bool
}

// inbox collects what a subscription receives.
type inbox struct {
	mu   sync.Mutex
	msgs []message
	more chan struct{}
}

// subscribe subscribes c to filter at QoS 1 and returns what arrives.
func subscribe(t *testing.T, c paho.Client, filter string) *inbox {
	t.Helper()
	in := &inbox{more: make(chan struct{}, 1)}
	tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		in.mu.Lock()
		in.msgs = append(in.msgs, message{Topic: m.Topic(), Payload: append([]byte(nil), m.Payload()...), Retain: m.Retained()})
		in.mu.Unlock()
		select {
		case in.more <- struct{}{}:
		default:
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	return in
}

// wait returns the first message (oldest first) for which match is true,
// failing the test after timeout.
func (in *inbox) wait(t *testing.T, timeout time.Duration, what string, match func(message) bool) message {
	t.Helper()
	deadline := time.After(timeout)
	for {
		in.mu.Lock()
		for _, m := range in.msgs {
			if match(m) {
				in.mu.Unlock()
				return m
			}
		}
		in.mu.Unlock()
		select {
		case <-in.more:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			in.mu.Lock()
			var got []string
			for _, m := range in.msgs {
				got = append(got, fmt.Sprintf("%s %.200s", m.Topic, m.Payload))
			}
			in.mu.Unlock()
			t.Fatalf("no %s within %v; received:\n%s", what, timeout, strings.Join(got, "\n"))
		}
	}
}

func onTopic(topic string) func(message) bool {
	return func(m message) bool { return m.Topic == topic }
}

// waitOnline waits for emberd's retained "online" status on the broker
// in's client is connected to: emberd publishes it once it has
// subscribed to its pipelines' topics, so messages sent after it are not
// lost for want of a subscriber.
func waitOnline(t *testing.T, in *inbox) {
	t.Helper()
	in.wait(t, 30*time.Second, "online status", func(m message) bool {
		return m.Topic == "ember/v1/"+deviceID+"/status" && string(m.Payload) == "online"
	})
}

// allRecords reads every outbox record of a closed daemon's database, in
// sequence order, and checks the file.
func allRecords(t *testing.T, dbPath string) []store.Record {
	t.Helper()
	st, err := store.Open(dbPath, store.Options{})
	if err != nil {
		t.Fatalf("open the database emberd left: %v", err)
	}
	defer st.Close()
	if err := st.Check(); err != nil {
		t.Fatalf("database check: %v", err)
	}
	var out []store.Record
	var after uint64
	for {
		rs, err := st.Records(store.RecordFilter{AfterSeq: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) == 0 {
			return out
		}
		out = append(out, rs...)
		after = rs[len(rs)-1].Seq
	}
}

// allJobs reads every job of a closed daemon's database.
func allJobs(t *testing.T, dbPath string) []store.Job {
	t.Helper()
	st, err := store.Open(dbPath, store.Options{})
	if err != nil {
		t.Fatalf("open the database emberd left: %v", err)
	}
	defer st.Close()
	var out []store.Job
	var before uint64
	for {
		js, err := st.Jobs(store.JobFilter{BeforeID: before, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(js) == 0 {
			return out
		}
		out = append(out, js...)
		before = js[len(js)-1].ID
		if before == 1 {
			return out
		}
	}
}

// jobRequest is the part of a stored job's request the tests read.
type jobRequest struct {
	RequestID string         `json:"request_id"`
	Input     map[string]any `json:"input"`
}

func decodeJobRequest(t *testing.T, j store.Job) jobRequest {
	t.Helper()
	var r jobRequest
	if err := json.Unmarshal(j.Request, &r); err != nil {
		t.Fatalf("job %d: request: %v", j.ID, err)
	}
	return r
}
