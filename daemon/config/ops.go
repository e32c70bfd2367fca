package config

// Governors keep the board inside its thermal and disk envelope.
type Governors struct {
	// Interval is how often they look.
	Interval Duration        `yaml:"interval"`
	Thermal  ThermalGovernor `yaml:"thermal"`
	Disk     DiskGovernor    `yaml:"disk"`
}

// ThermalGovernor throttles inference on a hot board.
type ThermalGovernor struct {
	// MaxCelsius starts throttling (the hottest sensor); 0 disables.
	MaxCelsius float64 `yaml:"max_celsius"`
	// ResumeCelsius ends it: below MaxCelsius, so a board hovering at the
	// limit does not flap (hysteresis).
	ResumeCelsius float64 `yaml:"resume_celsius"`
	// Threads and Parallel are what models run with while throttled.
	Threads  int `yaml:"threads"`
	Parallel int `yaml:"parallel"`
	// PauseBelowPriority holds back jobs of pipelines with a lower
	// priority until the board cools.
	PauseBelowPriority int `yaml:"pause_below_priority"`
}

// DiskGovernor refuses low-priority work before the disk fills.
type DiskGovernor struct {
	// MinFree is the free space on the state dir's file system below
	// which low-priority pipelines refuse new messages; 0 disables.
	MinFree ByteSize `yaml:"min_free"`
	// PauseBelowPriority: pipelines with a lower priority refuse.
	PauseBelowPriority int `yaml:"pause_below_priority"`
}

// Telemetry configures the periodic health snapshot.
type Telemetry struct {
	// Interval between snapshots; 0 disables them.
	Interval Duration `yaml:"interval"`
	// Classification of telemetry records: shared (synced) or local.
	Classification string `yaml:"classification"`
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	// Listen is the address of /metrics; empty disables it. The default is
	// loopback only.
	Listen string `yaml:"listen"`
}

// Fleet configures signed fleet updates (models and pipelines); they
// arrive over the uplink's connection.
type Fleet struct {
	// TrustedKeys are ed25519 public keys, as files or base64, that may
	// sign manifests; none (and no RootKey) disables fleet updates. A key
	// list signed by RootKey replaces them.
	TrustedKeys []string `yaml:"trusted_keys"`
	// RootKey is the fleet's pinned root key (a file or base64): it signs
	// the key lists, retained on fleet/v1/<fleet>/keys, that rotate and
	// revoke the manifest keys in band. Empty: no key lists.
	RootKey string `yaml:"root_key"`
	// MaxVersionJump is how far above the highest accepted version a
	// manifest signed by one key may go; further needs two keys.
	MaxVersionJump int64 `yaml:"max_version_jump"`
	// RequireHTTPS refuses plain-http artifact URLs and redirects, except
	// to loopback hosts.
	RequireHTTPS bool `yaml:"require_https"`
	// AllowedLicenses, when set, is the only model licenses accepted.
	AllowedLicenses []string `yaml:"allowed_licenses"`
	// KeepVersions is how many earlier releases stay for rollback.
	KeepVersions int `yaml:"keep_versions"`
	// MaxBootAttempts: an unconfirmed update that restarts the daemon more
	// often than this is rolled back.
	MaxBootAttempts int `yaml:"max_boot_attempts"`
	// Bandwidth caps download speed in bytes/s; 0 is no cap.
	Bandwidth ByteSize `yaml:"bandwidth"`
}

// The values of audit.inference.
const (
	// AuditInferenceMetadata records who ran which model on how many
	// prompt tokens, never the prompt or the output.
	AuditInferenceMetadata = "metadata"
	// AuditInferenceOff records no inference.
	AuditInferenceOff = "off"
)

// Audit configures the tamper-evident audit chain (daemon/audit).
type Audit struct {
	// Inference is metadata (every gRPC inference call and every job
	// leaves an entry without its prompt) or off.
	Inference string `yaml:"inference"`
	// MaxEntries bounds the chain: above it the oldest entries that the
	// uplink has synced (all of them, without an uplink) are pruned,
	// leaving a signed checkpoint.
	MaxEntries int `yaml:"max_entries"`
	// CheckpointInterval is how often the chain's head is signed.
	CheckpointInterval Duration `yaml:"checkpoint_interval"`
}
