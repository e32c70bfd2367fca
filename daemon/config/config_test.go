package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseFullConfig(t *testing.T) {
	doc := `
version: 1
device_id: press-07
state_dir: state
shutdown_timeout: 3s
log: {level: debug, format: json}
llama: {lib_dir: /opt/llama, verbose: true}
grpc:
  socket: run/ember.sock
  socket_mode: "0600"
  tcp: 127.0.0.1:7443
  insecure: true
engine:
  threads: 2
  context: 1024
  queue_size: 4
  max_tokens: 64
  max_prompt_bytes: 1000
  memory_reserve: 128MiB
models:
  - name: qwen
    path: models/qwen.gguf
    default: true
    context: 2048
  - name: smol
    path: /srv/smol.gguf
    load: false
`
	cfg, err := Parse([]byte(doc), "/etc/ember")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DeviceID != "press-07" || cfg.Log.Format != "json" || cfg.Engine.QueueSize != 4 {
		t.Errorf("values not read: %+v", cfg)
	}
	if cfg.StateDir != "/etc/ember/state" || cfg.GRPC.Socket != "/etc/ember/run/ember.sock" || cfg.Models[0].Path != "/etc/ember/models/qwen.gguf" {
		t.Errorf("relative paths not resolved against the config dir: %q %q %q", cfg.StateDir, cfg.GRPC.Socket, cfg.Models[0].Path)
	}
	if cfg.Models[1].Path != "/srv/smol.gguf" {
		t.Errorf("absolute path changed: %q", cfg.Models[1].Path)
	}
	if cfg.ShutdownTimeout.D() != 3*time.Second || cfg.Engine.MemoryReserve != 128<<20 {
		t.Errorf("duration or size misread: %v %v", cfg.ShutdownTimeout.D(), cfg.Engine.MemoryReserve)
	}
	if !cfg.Models[0].LoadAtStart() || cfg.Models[1].LoadAtStart() {
		t.Error("load flags misread")
	}
	if m, ok := cfg.DefaultModel(); !ok || m.Name != "qwen" {
		t.Errorf("DefaultModel = %v, %v", m.Name, ok)
	}
}

func TestEmptyDocumentTakesDefaults(t *testing.T) {
	cfg, err := Parse([]byte("# nothing set\n"), "/x")
	if err != nil {
		t.Fatal(err)
	}
	def := Default()
	if cfg.StateDir != def.StateDir || cfg.Engine.QueueSize != def.Engine.QueueSize || cfg.GRPC.Socket != def.GRPC.Socket {
		t.Errorf("defaults not kept: %+v", cfg)
	}
}

func TestBadConfigsNameKeyAndLine(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"unknown top-level key", "device_id: a\nstat_dir: /x\n", []string{`line 2: unknown key "stat_dir"`, `did you mean "state_dir"`}},
		{"unknown nested key", "grpc:\n  sockt: /x\n", []string{`line 2: unknown key "grpc.sockt"`, `"grpc.socket"`}},
		{"unknown key in list item", "models:\n  - name: a\n    path: /a\n    treads: 2\n", []string{`line 4: unknown key "models[0].treads"`}},
		{"wrong type", "engine:\n  queue_size: lots\n", []string{`line 2: engine.queue_size: want an integer, got "lots"`}},
		{"bool as word", "llama:\n  verbose: yes please\n", []string{`line 2: llama.verbose: want true or false`}},
		{"bad duration", "shutdown_timeout: 10 minutes\n", []string{`line 1: shutdown_timeout:`, "10s"}},
		{"bad size", "engine:\n  memory_reserve: lots\n", []string{`line 2: engine.memory_reserve:`, "512MiB"}},
		{"mapping where list", "models:\n  name: a\n", []string{`line 2: models: want a list`}},
		{"list where mapping", "grpc:\n  - a\n", []string{`line 2: grpc: want a mapping`}},
		{"newer version", "version: 2\n", []string{`line 1: version: version 2 is not supported`}},
		{"bad device id", "device_id: line 3/press\n", []string{`line 1: device_id:`, "MQTT topics"}},
		{"bad log level", "log: {level: loud}\n", []string{`line 1: log.level: "loud"`}},
		{"nothing to listen on", "grpc: {socket: \"\"}\n", []string{"grpc: neither grpc.socket nor grpc.tcp"}},
		{"tcp without tls", "grpc: {tcp: \"0.0.0.0:7443\"}\n", []string{"line 1: grpc.tcp: TCP without TLS needs"}},
		{"tcp not host:port", "grpc: {tcp: \"7443\", insecure: true}\n", []string{`grpc.tcp: "7443" is not host:port`}},
		{"cert without key", "grpc: {tcp: \":1\", tls: {cert: /c}}\n", []string{"grpc.tls: cert and key must be set together"}},
		{"socket mode", "grpc: {socket_mode: rw}\n", []string{`grpc.socket_mode: "rw"`}},
		{"queue size zero", "engine: {queue_size: 0}\n", []string{"line 1: engine.queue_size: must be at least 1"}},
		{"duplicate model", "models:\n  - {name: a, path: /a}\n  - {name: a, path: /b}\n", []string{`line 3: models[1].name: "a" is used by another model`}},
		{"model without path", "models:\n  - name: a\n", []string{"models[0].path: must be set"}},
		{"two defaults", "models:\n  - {name: a, path: /a, default: true}\n  - {name: b, path: /b, default: true}\n", []string{"line 3: models[1].default: only one"}},
		{"tiny context", "engine: {context: 8}\n", []string{"engine.context: must be 0"}},
		{"not yaml", "grpc: [unclosed\n", []string{"not valid YAML"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc), "/etc/ember")
			if err == nil {
				t.Fatalf("Parse accepted:\n%s", tt.doc)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestEveryProblemIsReportedAtOnce(t *testing.T) {
	doc := "bogus: 1\nengine:\n  queue_size: x\n  treads: 2\nlog: {format: xml}\n"
	_, err := Parse([]byte(doc), "/")
	if err == nil {
		t.Fatal("accepted")
	}
	for _, w := range []string{`unknown key "bogus"`, "engine.queue_size", `unknown key "engine.treads"`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
	// Value checks run only once the document decodes cleanly.
	_, err = Parse([]byte("log: {format: xml, level: loud}\nengine: {queue_size: 0}\n"), "/")
	if n := strings.Count(err.Error(), "\n") + 1; n != 3 {
		t.Errorf("want 3 problems, got %d:\n%v", n, err)
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ember.yaml")
	if err := os.WriteFile(path, []byte("nope: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Load error should name %s: %v", path, err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("missing file error: %v", err)
	}
}

// TestByteSizes: every size key reads the spellings bytesize.Parse does
// (its own tests hold the full table), and says which key is wrong.
func TestByteSizes(t *testing.T) {
	for in, want := range map[string]ByteSize{"512": 512, "64k": 64 << 10, "512MiB": 512 << 20, "2GiB": 2 << 30, "1.5GB": 1.5e9, "100 MB": 100e6, "1.5 g": 3 << 29} {
		c, err := Parse([]byte("engine:\n  memory_reserve: "+in+"\n"), t.TempDir())
		if err != nil || c.Engine.MemoryReserve != want {
			t.Errorf("memory_reserve: %s = %d, %v; want %d", in, c.Engine.MemoryReserve, err, want)
		}
	}
	for _, in := range []string{"''", "-1", "lots", "5 parsecs", "12XB", "1e30", "nan"} {
		if _, err := Parse([]byte("engine:\n  memory_reserve: "+in+"\n"), t.TempDir()); err == nil || !strings.Contains(err.Error(), "engine.memory_reserve") {
			t.Errorf("memory_reserve: %s: error %v", in, err)
		}
	}
}
