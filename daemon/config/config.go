package config

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// CurrentVersion is the config format this emberd reads. A file without a
// version field is taken to be this version.
const CurrentVersion = 1

// DefaultPath is where emberd looks for its config when --config is absent.
const DefaultPath = "/etc/ember/ember.yaml"

// Config is emberd's whole configuration.
type Config struct {
	Version  int    `yaml:"version"`
	DeviceID string `yaml:"device_id"`
	StateDir string `yaml:"state_dir"`
	// ShutdownTimeout bounds graceful shutdown: in-flight streams get this
	// long to finish before they are cancelled.
	ShutdownTimeout Duration     `yaml:"shutdown_timeout"`
	Log             Log          `yaml:"log"`
	Llama           Llama        `yaml:"llama"`
	GRPC            GRPC         `yaml:"grpc"`
	Engine          Engine       `yaml:"engine"`
	Models          []Model      `yaml:"models"`
	Store           Store        `yaml:"store"`
	MQTT            MQTT         `yaml:"mqtt"`
	Pipelines       []Pipeline   `yaml:"pipelines"`
	Uplink          Uplink       `yaml:"uplink"`
	Redact          []RedactRule `yaml:"redact"`
	Fleet           Fleet        `yaml:"fleet"`
	Governors       Governors    `yaml:"governors"`
	Telemetry       Telemetry    `yaml:"telemetry"`
	Metrics         Metrics      `yaml:"metrics"`
	Audit           Audit        `yaml:"audit"`
	Auth            Auth         `yaml:"auth"`

	// lines maps dotted key paths to the line they were set on, so that
	// validation errors can point into the file.
	lines map[string]int
	// dir is the directory relative paths are resolved against.
	dir string
}

// Log configures structured logging.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is text or json.
	Format string `yaml:"format"`
}

// Llama configures the llama.cpp libraries.
type Llama struct {
	// LibDir holds libllama.so and friends; empty means EMBER_LLAMA_LIB,
	// then the default locations.
	LibDir string `yaml:"lib_dir"`
	// Verbose passes llama.cpp's own log output through to stderr.
	Verbose bool `yaml:"verbose"`
}

// GRPC configures the API listeners.
type GRPC struct {
	// Socket is the unix socket path; empty disables it.
	Socket string `yaml:"socket"`
	// SocketMode is the socket file's permission bits, in octal.
	SocketMode string `yaml:"socket_mode"`
	// TCP is a host:port to listen on; empty disables TCP.
	TCP string `yaml:"tcp"`
	// TLS secures the TCP listener.
	TLS TLS `yaml:"tls"`
	// Insecure allows TCP without TLS; emberd logs a warning at start.
	Insecure bool `yaml:"insecure"`
	// AllowUnauthenticatedTCP lets TCP callers that present neither a
	// client certificate nor a bearer token in, with the role of the
	// "anonymous" principal (viewer unless auth.roles says more). TCP
	// without TLS needs it, since there nothing authenticates a caller;
	// emberd logs a warning at every start while it is set.
	AllowUnauthenticatedTCP bool `yaml:"allow_unauthenticated_tcp"`
	// MaxRecvMsgSize bounds one request message; larger ones are refused
	// with RESOURCE_EXHAUSTED. 0 means DefaultMaxRecvMsgSize (4MiB).
	MaxRecvMsgSize ByteSize `yaml:"max_recv_msg_size"`
}

// TLS names certificate files.
type TLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// ClientCA, when set, requires clients to present a certificate signed
	// by it.
	ClientCA string `yaml:"client_ca"`
}

// Engine configures inference defaults shared by all models.
type Engine struct {
	// Threads for decoding; 0 derives it from the hardware (physical cores).
	Threads int `yaml:"threads"`
	// Context is the context length per sequence; 0 derives it from RAM
	// and the model's trained length.
	Context int `yaml:"context"`
	// Parallel is the number of sequences decoded together per model
	// (continuous batching); 0 derives it from the hardware.
	Parallel int `yaml:"parallel"`
	// QueueSize bounds the requests waiting per model; more are refused
	// with RESOURCE_EXHAUSTED.
	QueueSize int `yaml:"queue_size"`
	// MaxTokens is the default cap on generated tokens per request.
	MaxTokens int `yaml:"max_tokens"`
	// MaxPromptBytes refuses larger prompts before tokenizing them.
	MaxPromptBytes int `yaml:"max_prompt_bytes"`
	// MemoryReserve is kept free when admitting a model load, in bytes.
	MemoryReserve ByteSize `yaml:"memory_reserve"`
	// StreamInterval paces streamed text: pieces decoded within it are
	// sent as one message.
	StreamInterval Duration `yaml:"stream_interval"`
}

// Model is one model the daemon serves from the config.
type Model struct {
	Name    string `yaml:"name"`
	Path    string `yaml:"path"`
	Default bool   `yaml:"default"`
	// Threads and Context override the engine's values for this model.
	Threads int `yaml:"threads"`
	Context int `yaml:"context"`
	// Load says whether emberd loads the model at start.
	Load *bool `yaml:"load"`
}

// LoadAtStart reports whether the model is loaded when the daemon starts.
func (m Model) LoadAtStart() bool { return m.Load == nil || *m.Load }

// Default returns the configuration used for keys a file leaves out.
func Default() *Config {
	host, _ := os.Hostname()
	return &Config{
		Version:         CurrentVersion,
		DeviceID:        host,
		StateDir:        "/var/lib/ember",
		ShutdownTimeout: Duration(10 * time.Second),
		Log:             Log{Level: "info", Format: "text"},
		GRPC: GRPC{
			Socket:     DefaultSocket(),
			SocketMode: "0660",
		},
		Store: Store{
			MaxBytes:     256 << 20,
			MaxRecords:   1_000_000,
			MaxAge:       Duration(30 * 24 * time.Hour),
			JobRetention: Duration(24 * time.Hour),
			DedupWindow:  Duration(10 * time.Minute),
			CompactRatio: 0.5,
			CompactMin:   32 << 20,
		},
		MQTT: MQTT{
			Embedded: Embedded{Listen: "127.0.0.1:1883", MaxPayload: 256 << 10, Limits: BrokerLimits{
				MaxClients: 256, MaxSessions: 512, SessionExpiry: Duration(24 * time.Hour),
				MaxInflight: 1024, MaxQueued: 1024, MaxRetained: 10_000, MaxRetainedBytes: 16 << 20, TopicAliases: 64,
			}},
			Requests: Requests{Priority: 6, MaxTokens: 256, Classification: "local"},
			External: External{
				KeepAlive: Duration(30 * time.Second),
				Backoff:   Backoff{Min: Duration(500 * time.Millisecond), Max: Duration(time.Minute)},
			},
		},
		Fleet: Fleet{KeepVersions: 2, MaxBootAttempts: 3, MaxVersionJump: 1000, RequireHTTPS: true},
		Governors: Governors{
			Interval: Duration(10 * time.Second),
			Thermal:  ThermalGovernor{MaxCelsius: 80, ResumeCelsius: 70, Threads: 1, Parallel: 1, PauseBelowPriority: 5},
			Disk:     DiskGovernor{MinFree: 256 << 20, PauseBelowPriority: 5},
		},
		Telemetry: Telemetry{Interval: Duration(time.Minute), Classification: "shared"},
		Audit:     Audit{Inference: AuditInferenceMetadata, MaxEntries: 100000, CheckpointInterval: Duration(10 * time.Minute)},
		Metrics:   Metrics{Listen: "127.0.0.1:9464"},
		Uplink: Uplink{
			Backoff: Backoff{Min: Duration(time.Second), Max: Duration(5 * time.Minute)},
			Topics: UplinkTopics{
				Results:     "fleet/v1/{fleet}/{device}/results",
				Telemetry:   "fleet/v1/{fleet}/{device}/telemetry",
				DeadLetters: "fleet/v1/{fleet}/{device}/deadletters",
				Audit:       "fleet/v1/{fleet}/{device}/audit",
				Ack:         "fleet/v1/{fleet}/{device}/ack",
			},
			Confirm:        "collector",
			ConfirmTimeout: Duration(2 * time.Minute),
			BatchRecords:   256,
			BatchBytes:     256 << 10,
			Window:         8,
			Retention:      Duration(7 * 24 * time.Hour),
		},
		Engine: Engine{
			QueueSize:      8,
			MaxTokens:      256,
			MaxPromptBytes: 256 << 10,
			MemoryReserve:  256 << 20,
			StreamInterval: Duration(25 * time.Millisecond),
		},
	}
}

// DefaultSocket is the unix socket emberd listens on and emberctl dials
// when neither is told otherwise: /run/ember/ember.sock for root (systemd's
// RuntimeDirectory), else $XDG_RUNTIME_DIR/ember/ember.sock, else
// /tmp/ember-<uid>/ember.sock, so a laptop user needs no privileges.
func DefaultSocket() string {
	if os.Geteuid() == 0 {
		return "/run/ember/ember.sock"
	}
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		return filepath.Join(dir, "ember", "ember.sock")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("ember-%d", os.Getuid()), "ember.sock")
}

// DefaultModel returns the model marked default, else the only model, else
// false.
func (c *Config) DefaultModel() (Model, bool) {
	for _, m := range c.Models {
		if m.Default {
			return m, true
		}
	}
	if len(c.Models) == 1 {
		return c.Models[0], true
	}
	return Model{}, false
}

// DBPath is the bbolt database inside the state dir.
func (c *Config) DBPath() string { return filepath.Join(c.StateDir, "ember.db") }

// AuditKeyPath is the device's audit signing key (ed25519, made at first
// start, mode 0600).
func (c *Config) AuditKeyPath() string { return filepath.Join(c.StateDir, "audit.key") }

// ModelStoreDir is where imported models are kept.
func (c *Config) ModelStoreDir() string { return filepath.Join(c.StateDir, "models") }
