package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/ember-edge/ember/internal/tlsconf"
	"github.com/ember-edge/ember/internal/tlsconf/tlstest"
	"github.com/ember-edge/ember/sync/fleet"
)

// runCtl runs emberctl in-process, as Main does, with the fleet command
// registered whether or not root.go registers it yet.
func runCtl(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	a := &app{ctx: context.Background(), stdin: strings.NewReader(""), stdout: &out, stderr: &errb}
	root := a.rootCommand()
	if c, _, err := root.Find([]string{"fleet"}); err != nil || c == root {
		root.AddCommand(a.fleetCommand())
	}
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	err := root.ExecuteContext(context.Background())
	if err == nil {
		return out.String(), errb.String(), 0
	}
	fmt.Fprintln(&errb, "emberctl:", a.explain(err))
	var ue usageError
	if errors.As(err, &ue) {
		return out.String(), errb.String(), 2
	}
	return out.String(), errb.String(), 1
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := runCtl(t, args...)
	if code != 0 {
		t.Fatalf("emberctl %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

const testManifest = `version: 3
artifacts:
  - kind: model
    name: qwen
    url: https://models.example.com/qwen.gguf
    sha256: 74a4da8c9fdbcd15bd1f6d01d621410d31c6fc00986f5eb687824e7b93d7a9db
    size: 491400032
    license: apache-2.0
    requires: {min_memory: 2GiB, arch: [arm64]}
checks:
  - prompt: "Reply with OK"
    max_tokens: 4
    contains: OK
`

// signedFixture makes a key pair and a signed envelope in a temp dir.
func signedFixture(t *testing.T) (dir, envelope string) {
	t.Helper()
	dir = t.TempDir()
	mustRun(t, "fleet", "keygen", "--out", filepath.Join(dir, "keys"))
	if err := os.WriteFile(filepath.Join(dir, "release.yaml"), []byte(testManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	envelope = filepath.Join(dir, "release.json")
	mustRun(t, "fleet", "sign", "--fleet", "line3", "--key", filepath.Join(dir, "keys", "fleet.key"),
		"--manifest", filepath.Join(dir, "release.yaml"), "--out", envelope)
	return dir, envelope
}

func TestFleetKeygenSignVerify(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	out := mustRun(t, "-o", "json", "fleet", "keygen", "--out", keys)
	var kg struct{ KeyID, PublicKey string }
	if err := json.Unmarshal([]byte(strings.NewReplacer(`"key_id"`, `"KeyID"`, `"public_key"`, `"PublicKey"`).Replace(out)), &kg); err != nil {
		t.Fatalf("keygen -o json: %v\n%s", err, out)
	}
	fi, err := os.Stat(filepath.Join(keys, "fleet.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("fleet.key: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	pubPEM, _ := os.ReadFile(filepath.Join(keys, "fleet.pub"))
	pub, err := fleet.ParsePublicKey(pubPEM)
	if err != nil || fleet.KeyID(pub) != kg.KeyID {
		t.Fatalf("fleet.pub: %v, id %s vs %s", err, fleet.KeyID(pub), kg.KeyID)
	}

	// keygen never overwrites.
	before, _ := os.ReadFile(filepath.Join(keys, "fleet.key"))
	if _, errOut, code := runCtl(t, "fleet", "keygen", "--out", keys); code != 1 || !strings.Contains(errOut, "exists") {
		t.Errorf("second keygen: exit %d, %s", code, errOut)
	}
	if after, _ := os.ReadFile(filepath.Join(keys, "fleet.key")); !bytes.Equal(before, after) {
		t.Fatal("keygen replaced a key")
	}

	yaml := filepath.Join(dir, "release.yaml")
	os.WriteFile(yaml, []byte(testManifest), 0o644)
	env := filepath.Join(dir, "release.json")
	out = mustRun(t, "fleet", "sign", "--fleet", "line3", "--key", filepath.Join(keys, "fleet.key"), "--manifest", yaml, "--out", env)
	if !strings.Contains(out, "signed version 3") || !strings.Contains(out, kg.KeyID) {
		t.Errorf("sign said %q", out)
	}
	// verify by file and by base64 key, as devices are configured.
	for _, key := range []string{filepath.Join(keys, "fleet.pub"), kg.PublicKey} {
		out = mustRun(t, "fleet", "verify", "--key", key, env)
		if !strings.Contains(out, "version 3") || !strings.Contains(out, "qwen") {
			t.Errorf("verify said %q", out)
		}
	}
	// The device-side library agrees.
	data, _ := os.ReadFile(env)
	if _, err := fleet.Verify(data, fleet.NewKeyRing(pub)); err != nil {
		t.Fatal(err)
	}
	// Another key does not verify it.
	mustRun(t, "fleet", "keygen", "--out", filepath.Join(dir, "other"))
	_, errOut, code := runCtl(t, "fleet", "verify", "--key", filepath.Join(dir, "other", "fleet.pub"), env)
	if code != 1 || !strings.Contains(errOut, "no trusted key") {
		t.Errorf("verify with another key: exit %d, %s", code, errOut)
	}
	// Tampering is caught.
	os.WriteFile(env, bytes.Replace(data, []byte("491400032"), []byte("491400033"), 1), 0o644)
	_, errOut, code = runCtl(t, "fleet", "verify", "--key", filepath.Join(keys, "fleet.pub"), env)
	if code != 1 || !strings.Contains(errOut, "does not verify") {
		t.Errorf("verify of a tampered envelope: exit %d, %s", code, errOut)
	}
}

func TestFleetSignTwoKeysForRotation(t *testing.T) {
	dir, _ := signedFixture(t)
	mustRun(t, "fleet", "keygen", "--out", filepath.Join(dir, "new"))
	env := filepath.Join(dir, "both.json")
	mustRun(t, "fleet", "sign", "--fleet", "line3", "--key", filepath.Join(dir, "keys", "fleet.key"), "--key", filepath.Join(dir, "new", "fleet.key"),
		"--manifest", filepath.Join(dir, "release.yaml"), "--out", env)
	for _, k := range []string{"keys", "new"} {
		mustRun(t, "fleet", "verify", "--key", filepath.Join(dir, k, "fleet.pub"), env)
	}
}

func TestFleetSignReportsLines(t *testing.T) {
	dir, _ := signedFixture(t)
	bad := strings.Replace(testManifest, "size: 491400032", "size: 0", 1)
	bad = strings.Replace(bad, "license: apache-2.0", "licence: apache-2.0", 1)
	yaml := filepath.Join(dir, "bad.yaml")
	os.WriteFile(yaml, []byte(bad), 0o644)
	_, errOut, code := runCtl(t, "fleet", "sign", "--fleet", "line3", "--key", filepath.Join(dir, "keys", "fleet.key"), "--manifest", yaml, "--out", filepath.Join(dir, "x.json"))
	if code != 1 || !strings.Contains(errOut, "bad.yaml") || !strings.Contains(errOut, `line 8: unknown key "artifacts[0].licence"`) {
		t.Errorf("exit %d:\n%s", code, errOut)
	}
	os.WriteFile(yaml, []byte(strings.Replace(testManifest, "size: 491400032", "size: 0", 1)), 0o644)
	_, errOut, _ = runCtl(t, "fleet", "sign", "--fleet", "line3", "--key", filepath.Join(dir, "keys", "fleet.key"), "--manifest", yaml, "--out", filepath.Join(dir, "x.json"))
	if !strings.Contains(errOut, "line 7: artifacts[0].size") {
		t.Errorf("rule errors need lines too:\n%s", errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.json")); err == nil {
		t.Error("an envelope was written for a bad manifest")
	}
	if _, _, code := runCtl(t, "fleet", "sign", "--manifest", yaml); code != 2 {
		t.Errorf("sign without --key: exit %d, want 2", code)
	}
}

func TestFleetPublishRefusesBeforeConnecting(t *testing.T) {
	dir, env := signedFixture(t)
	unsigned := filepath.Join(dir, "unsigned.json")
	data, _ := os.ReadFile(env)
	var e map[string]any
	json.Unmarshal(data, &e)
	e["signatures"] = []any{}
	b, _ := json.Marshal(e)
	os.WriteFile(unsigned, b, 0o644)
	// Port 1 on loopback: a connection attempt would fail differently.
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{unsigned}, 1, "not a well-formed signed envelope"},
		{[]string{filepath.Join(dir, "release.yaml")}, 1, "not a well-formed signed envelope"},
		{[]string{"--device", "a/b", env}, 2, "--device"},
		{[]string{"--clear", env}, 2, "--clear takes no FILE"},
	} {
		args := append([]string{"fleet", "publish", "--url", "tcp://127.0.0.1:1", "--fleet", "line3"}, tc.args...)
		_, errOut, code := runCtl(t, args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, %s; want %d, %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
	if _, errOut, code := runCtl(t, "fleet", "publish", "--url", "http://x:1", "--fleet", "f", env); code != 2 || !strings.Contains(errOut, "scheme") {
		t.Errorf("http URL: exit %d, %s", code, errOut)
	}
}

// mosquitto starts a broker on a free loopback port with conf (the
// listener line is added) and returns its port.
func mosquitto(t *testing.T, conf string) int {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/mosquitto"); serr != nil {
			t.Fatal("mosquitto is not installed; this test needs a real broker: apt-get install mosquitto")
		}
		bin = "/usr/sbin/mosquitto"
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "mosquitto.conf")
	full := fmt.Sprintf("listener %d 127.0.0.1\npersistence false\nlog_dest stderr\nuser root\n%s", port, conf)
	if err := os.WriteFile(path, []byte(full), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", path)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return port
		}
		select {
		case <-exited:
			t.Fatalf("mosquitto exited: %s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto did not listen on %d: %s", port, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// retained connects a fresh client and returns the retained message on
// topic, or nil when none arrives soon after the subscription (a broker
// sends retained messages right after SUBACK).
func retained(t *testing.T, opts *paho.ClientOptions, topic string) []byte {
	t.Helper()
	got := make(chan paho.Message, 1)
	cli := paho.NewClient(opts.SetClientID(fmt.Sprintf("test-sub-%d", time.Now().UnixNano())).SetCleanSession(true))
	if tok := cli.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	defer cli.Disconnect(100)
	tok := cli.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) {
		select {
		case got <- m:
		default:
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	select {
	case m := <-got:
		if !m.Retained() {
			t.Errorf("message on %s is not retained", topic)
		}
		return m.Payload()
	case <-time.After(time.Second):
		return nil
	}
}

func TestFleetPublishToMosquitto(t *testing.T) {
	dir, env := signedFixture(t)
	port := mosquitto(t, "allow_anonymous true\n")
	url := fmt.Sprintf("tcp://127.0.0.1:%d", port)
	sub := paho.NewClientOptions().AddBroker(url)

	out := mustRun(t, "fleet", "publish", "--url", url, "--fleet", "line3", env)
	if !strings.Contains(out, "published version 3 to fleet/v1/line3/desired") {
		t.Errorf("publish said %q", out)
	}
	mustRun(t, "fleet", "publish", "--url", "mqtt://127.0.0.1:"+fmt.Sprint(port), "--fleet", "line3", "--device", "gw-07", env)

	pubPEM, _ := os.ReadFile(filepath.Join(dir, "keys", "fleet.pub"))
	pub, _ := fleet.ParsePublicKey(pubPEM)
	for _, topic := range []string{fleet.FleetDesiredTopic("line3"), fleet.DeviceDesiredTopic("line3", "gw-07")} {
		payload := retained(t, sub, topic)
		if payload == nil {
			t.Fatalf("a fresh subscriber got nothing retained on %s", topic)
		}
		v, err := fleet.Verify(payload, fleet.NewKeyRing(pub))
		if err != nil || v.Manifest.Version != 3 {
			t.Fatalf("retained payload on %s: %v", topic, err)
		}
		if bytes.ContainsAny(payload, "\n") {
			t.Errorf("payload is not compact: %d bytes", len(payload))
		}
	}

	out = mustRun(t, "-o", "json", "fleet", "publish", "--url", url, "--fleet", "line3", "--device", "gw-07", "--clear")
	if !strings.Contains(out, `"cleared": true`) {
		t.Errorf("clear said %s", out)
	}
	if p := retained(t, sub, fleet.DeviceDesiredTopic("line3", "gw-07")); p != nil {
		t.Errorf("retained message still there after --clear: %d bytes", len(p))
	}
}

func TestFleetPublishWithPassword(t *testing.T) {
	_, env := signedFixture(t)
	passwd, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Fatal("mosquitto_passwd is not installed; it comes with the broker: apt-get install mosquitto")
	}
	pwfile := filepath.Join(t.TempDir(), "passwd")
	if out, err := exec.Command(passwd, "-b", "-c", pwfile, "operator", "s3cret").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v: %s", err, out)
	}
	port := mosquitto(t, "allow_anonymous false\npassword_file "+pwfile+"\n")
	url := fmt.Sprintf("tcp://127.0.0.1:%d", port)
	_, errOut, code := runCtl(t, "fleet", "publish", "--url", url, "--fleet", "line3", "--username", "operator", "--password", "wrong", env)
	if code != 1 || !strings.Contains(errOut, "connect to") {
		t.Errorf("wrong password: exit %d, %s", code, errOut)
	}
	mustRun(t, "fleet", "publish", "--url", url, "--fleet", "line3", "--username", "operator", "--password", "s3cret", env)
	sub := paho.NewClientOptions().AddBroker(url).SetUsername("operator").SetPassword("s3cret")
	if retained(t, sub, fleet.FleetDesiredTopic("line3")) == nil {
		t.Fatal("nothing retained")
	}
}

func TestFleetPublishOverTLS(t *testing.T) {
	_, env := signedFixture(t)
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir)
	ca.Issue(t, "server")
	port := mosquitto(t, fmt.Sprintf("allow_anonymous true\ncafile %s\ncertfile %s\nkeyfile %s\n",
		filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")))
	url := fmt.Sprintf("ssl://127.0.0.1:%d", port)
	_, errOut, code := runCtl(t, "fleet", "publish", "--url", url, "--fleet", "line3", "--timeout", "5s", env)
	if code != 1 || !strings.Contains(errOut, "certificate") {
		t.Errorf("without --tls-ca the broker's certificate must be refused: exit %d, %s", code, errOut)
	}
	mustRun(t, "fleet", "publish", "--url", url, "--fleet", "line3", "--tls-ca", filepath.Join(dir, "ca.pem"), env)
	tc, err := tlsconf.Client{CA: ca.File}.Config()
	if err != nil {
		t.Fatal(err)
	}
	sub := paho.NewClientOptions().AddBroker(url).SetTLSConfig(tc)
	if retained(t, sub, fleet.FleetDesiredTopic("line3")) == nil {
		t.Fatal("nothing retained over TLS")
	}
	out := mustRun(t, "fleet", "publish", "--url", url, "--fleet", "line3", "--tls-ca", filepath.Join(dir, "ca.pem"), "--device", "gw-01", env)
	if !strings.Contains(out, "fleet/v1/line3/gw-01/desired") {
		t.Errorf("publish said %q", out)
	}
}
