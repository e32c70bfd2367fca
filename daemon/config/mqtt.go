package config

import "go.yaml.in/yaml/v3"

// Store bounds what the database keeps.
type Store struct {
	// MaxBytes and MaxRecords bound the outbox; past them a pipeline's
	// overflow policy decides (reject the new message, or drop the
	// oldest records, lowest priority first).
	MaxBytes   ByteSize `yaml:"max_bytes"`
	MaxRecords int      `yaml:"max_records"`
	// MaxAge drops outbox records older than this.
	MaxAge Duration `yaml:"max_age"`
	// JobRetention keeps finished jobs this long for `emberctl jobs`.
	JobRetention Duration `yaml:"job_retention"`
	// DedupWindow is how long a request id is remembered.
	DedupWindow Duration `yaml:"dedup_window"`
	// CompactRatio and CompactMin: the file is compacted when free pages
	// are at least this fraction of it and this many bytes.
	CompactRatio float64  `yaml:"compact_ratio"`
	CompactMin   ByteSize `yaml:"compact_min"`
}

// MQTT configures the brokers emberd serves and uses.
type MQTT struct {
	Embedded Embedded `yaml:"embedded"`
	External External `yaml:"external"`
	// Requests is the direct request topic, ember/v1/<device>/infer/<model>.
	Requests Requests `yaml:"requests"`
}

// Requests configures the direct request topic. It is off by default:
// anyone who may publish there runs the model, so turning it on is a
// decision, and its jobs get their own priority and a cap on their
// length.
type Requests struct {
	Enabled bool `yaml:"enabled"`
	// Priority of direct requests' jobs, 0 (lowest) to 9.
	Priority int `yaml:"priority"`
	// MaxTokens caps a request's params.max_tokens (a request asking for
	// more is refused) and is what a request that asks for none gets.
	MaxTokens int `yaml:"max_tokens"`
	// Classification of direct requests' results and dead letters, and of
	// gRPC submissions: local (never leaves the device) or shared.
	Classification string `yaml:"classification"`
}

// Embedded is the broker inside emberd, which PLCs can publish to directly.
type Embedded struct {
	// Listen is the TCP address; empty disables the embedded broker. The
	// default binds loopback only: exposing it to the plant network is
	// setting this to ":1883" (with users below).
	Listen string `yaml:"listen"`
	// TLS adds a TLS listener.
	TLS BrokerTLS `yaml:"tls"`
	// Users, when any are set, must log in, and each may use only the
	// topics its ACL grants. Without users, clients are anonymous: fine
	// on loopback, refused on any other address unless AllowAnonymous.
	Users []MQTTUser `yaml:"users"`
	// AllowAnonymous lets clients connect without a username (or with an
	// empty one and an empty password) on a listener that is not
	// loopback-only, or next to users (anonymous clients may then use
	// every topic no user's ACL is needed for: all of them). It must be
	// set explicitly.
	AllowAnonymous bool `yaml:"allow_anonymous"`
	// MaxPayload is the largest message accepted; the largest packet is
	// this plus 1KiB of headers.
	MaxPayload ByteSize `yaml:"max_payload"`
	// Limits bound what clients can make the broker hold in memory.
	Limits BrokerLimits `yaml:"limits"`
}

// BrokerLimits bound the embedded broker's memory: without them a few
// offline sessions subscribed to '#' grow without end.
type BrokerLimits struct {
	// MaxClients is the most clients connected at once; the next is
	// refused with "server busy" (MQTT 3.1.1: "server unavailable").
	MaxClients int `yaml:"max_clients"`
	// MaxSessions is the most sessions kept, connected or not; a client
	// that would start one more is refused with "quota exceeded".
	MaxSessions int `yaml:"max_sessions"`
	// SessionExpiry is the longest a disconnected client's session (its
	// subscriptions and queued messages) is kept; MQTT 5 clients may ask
	// for less, MQTT 3.1.1 persistent sessions get exactly this.
	SessionExpiry Duration `yaml:"session_expiry"`
	// MaxInflight is the most QoS 1/2 messages stored per client, sent
	// and unacknowledged or queued while it is offline; more are dropped.
	MaxInflight int `yaml:"max_inflight"`
	// MaxQueued is the most packets waiting to be written to one
	// connected client; more are dropped for that client.
	MaxQueued int `yaml:"max_queued"`
	// MaxRetained and MaxRetainedBytes bound the retained messages (count
	// and payload bytes); a retained message over them is refused.
	MaxRetained      int      `yaml:"max_retained"`
	MaxRetainedBytes ByteSize `yaml:"max_retained_bytes"`
	// TopicAliases is the topic alias maximum offered to MQTT 5 clients.
	TopicAliases int `yaml:"topic_aliases"`
}

// BrokerTLS is a TLS listener of the embedded broker.
type BrokerTLS struct {
	Listen   string `yaml:"listen"`
	Cert     string `yaml:"cert"`
	Key      string `yaml:"key"`
	ClientCA string `yaml:"client_ca"`
}

// MQTTUser is one login of the embedded broker.
type MQTTUser struct {
	Username string `yaml:"username"`
	// PasswordHash is a bcrypt hash (`emberctl mqtt passwd` makes one);
	// plain passwords are never stored.
	PasswordHash string `yaml:"password_hash"`
	// ACL lists the topics the user may use; none means every topic.
	ACL []ACLRule `yaml:"acl"`
}

// ACLRule grants access to topics matching a filter.
type ACLRule struct {
	Topic string `yaml:"topic"`
	// Access is read, write or readwrite.
	Access string `yaml:"access"`
}

// External is a broker emberd connects to as a client (mosquitto, a PLC
// gateway's broker, …).
type External struct {
	// URL is tcp://host:port or ssl://host:port; empty disables.
	URL      string `yaml:"url"`
	ClientID string `yaml:"client_id"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	TLS      TLS    `yaml:"tls"`
	// CA verifies the broker's certificate (ssl://).
	CA        string   `yaml:"ca"`
	KeepAlive Duration `yaml:"keepalive"`
	Backoff   Backoff  `yaml:"backoff"`
}

// Backoff bounds reconnection delays, which double from Min to Max.
type Backoff struct {
	Min Duration `yaml:"min"`
	Max Duration `yaml:"max"`
}

// Pipeline maps incoming MQTT messages to inference jobs.
type Pipeline struct {
	Name string `yaml:"name"`
	// Match is an MQTT topic filter, e.g. plant/line3/+/alarm.
	Match string `yaml:"match"`
	// Decode is json, text or sparkplugb.
	Decode string `yaml:"decode"`
	// Fields names values to extract: a JSON path (a.b[0].c) for json, a
	// metric name for sparkplugb. Without fields, the whole decoded
	// payload is available to the prompt.
	Fields map[string]string `yaml:"fields"`
	// ID is a field path whose value identifies a request: a second
	// message with the same id within store.dedup_window is a duplicate.
	ID string `yaml:"id"`
	// Prompt is a Go text/template over the fields.
	Prompt string `yaml:"prompt"`
	// System is an optional system message template.
	System string `yaml:"system"`
	// Raw sends the rendered prompt as is, without the chat template.
	Raw   bool   `yaml:"raw"`
	Model string `yaml:"model"`
	// MaxTokens caps the output; 0 takes engine.max_tokens.
	MaxTokens int         `yaml:"max_tokens"`
	Params    Params      `yaml:"params"`
	Output    Output      `yaml:"output"`
	Publish   Publish     `yaml:"publish"`
	Coalesce  Coalesce    `yaml:"coalesce"`
	RateLimit RateLimit   `yaml:"rate_limit"`
	Backlog   BacklogSpec `yaml:"backlog"`
	// Priority orders pipelines (0 lowest, 9 highest) for inference and
	// upload.
	Priority *int `yaml:"priority"`
	// Classification is shared (may leave the device) or local.
	Classification string `yaml:"classification"`
	// DeadLetterPayload says what a dead letter keeps of a payload that is
	// not JSON: digest (its size and sha256; the default, since no
	// redaction rule can reach inside such bytes) or raw (the bytes).
	DeadLetterPayload string `yaml:"dead_letter_payload"`
	// Guard is what happens to a message whose data reads like
	// instructions to the model (package pipeline/guard lists the rules):
	// off, flag (the default: the job runs and its result says what
	// matched) or quarantine (the message becomes a dead letter and never
	// reaches the model).
	Guard string `yaml:"guard"`
}

// Params are a pipeline's sampling parameters; unset ones take defaults.
type Params struct {
	Temperature   *float32 `yaml:"temperature"`
	TopK          *int32   `yaml:"top_k"`
	TopP          *float32 `yaml:"top_p"`
	MinP          *float32 `yaml:"min_p"`
	RepeatPenalty *float32 `yaml:"repeat_penalty"`
	Seed          *uint32  `yaml:"seed"`
	Stop          []string `yaml:"stop"`
}

// Output says what a pipeline's result is.
type Output struct {
	// Format is text or json.
	Format string `yaml:"format"`
	// Schema is a JSON Schema (written as YAML) the JSON output must
	// follow; decoding is constrained by a grammar made from it.
	Schema yaml.Node `yaml:"schema"`
}

// Publish says where results go.
type Publish struct {
	// Topic is a template; the default is ember/v1/<device>/result/<pipeline>.
	Topic  string `yaml:"topic"`
	QoS    *int   `yaml:"qos"`
	Retain bool   `yaml:"retain"`
	// ErrorTopic receives failures and dead letters; the default is
	// ember/v1/<device>/error/<pipeline>.
	ErrorTopic string `yaml:"error_topic"`
	// Allow lists the topic prefixes a text-output pipeline may publish
	// its results under ("{device}" stands for the device id); the
	// default is ember's own ember/v1/{device}/. Model-written free text
	// must not reach a topic that machines act on. JSON-output pipelines,
	// whose results follow their schema, are not limited.
	Allow []string `yaml:"allow"`
}

// Coalesce keeps only the latest message per key within a window.
type Coalesce struct {
	Key    string   `yaml:"key"`
	Window Duration `yaml:"window"`
}

// RateLimit bounds how often a pipeline's jobs start.
type RateLimit struct {
	PerSecond float64 `yaml:"per_second"`
	Burst     int     `yaml:"burst"`
}

// BacklogSpec bounds a pipeline's queued jobs.
type BacklogSpec struct {
	Max int `yaml:"max"`
	// Overflow is reject or drop_oldest.
	Overflow string `yaml:"overflow"`
}
