package fleet

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ember-edge/ember/internal/bytesize"
)

// Manifest is the desired state an operator signs: a version and the
// artifacts a device should run, with the checks a new version must pass
// before it takes traffic. FORMAT.md describes every field.
type Manifest struct {
	// Fleet is the fleet the manifest is for; a device of another fleet
	// refuses it even when it trusts the key.
	Fleet string `json:"fleet" yaml:"fleet"`
	// Devices, when not empty, are the only devices (device_id) the
	// manifest is for.
	Devices []string `json:"devices,omitempty" yaml:"devices"`
	// NotBefore and NotAfter bound when a device may accept the manifest
	// (by its own clock; NotBefore allows ClockSkew). NotAfter is required.
	NotBefore Timestamp `json:"not_before,omitzero" yaml:"not_before"`
	NotAfter  Timestamp `json:"not_after" yaml:"not_after"`
	// MinVersion, when set, is the oldest version a device that accepted
	// this manifest may run again: once it commits, older kept releases
	// retire and an operator's rollback below it is refused.
	MinVersion int64 `json:"min_version,omitempty" yaml:"min_version"`
	// Version orders manifests; a device accepts only versions greater
	// than the highest it ever accepted.
	Version   int64      `json:"version" yaml:"version"`
	Artifacts []Artifact `json:"artifacts" yaml:"artifacts"`
	Checks    []Check    `json:"checks,omitempty" yaml:"checks"`
}

// Kind is what an artifact is.
type Kind string

// The artifact kinds.
const (
	KindModel     Kind = "model"     // a GGUF model file
	KindPipelines Kind = "pipelines" // the daemon's pipeline definitions
)

// Artifact is one file of a release.
type Artifact struct {
	Kind     Kind     `json:"kind" yaml:"kind"`
	Name     string   `json:"name" yaml:"name"`
	URL      string   `json:"url" yaml:"url"`
	SHA256   string   `json:"sha256" yaml:"sha256"`
	Size     int64    `json:"size" yaml:"size"`
	License  string   `json:"license,omitempty" yaml:"license"`
	Requires Requires `json:"requires,omitzero" yaml:"requires"`
}

// Requires is what a device needs to run an artifact.
type Requires struct {
	// MinMemory is the RAM the device must have, in bytes. YAML accepts a
	// size with a unit ("6GiB"); the signed JSON holds the integer.
	MinMemory Bytes `json:"min_memory,omitempty" yaml:"min_memory"`
	// Arch lists the Go architecture names the artifact runs on (amd64,
	// arm64, ...); empty means any.
	Arch []string `json:"arch,omitempty" yaml:"arch"`
}

// Check is a prompt run against a new version before it takes traffic,
// with the expectations its result must meet.
type Check struct {
	// Model names the model artifact to run the prompt on; empty means
	// the release's only model, or the daemon's default model.
	Model     string `json:"model,omitempty" yaml:"model"`
	Prompt    string `json:"prompt" yaml:"prompt"`
	MaxTokens int    `json:"max_tokens" yaml:"max_tokens"`

	// JSONSchema, when set, must validate the output parsed as JSON.
	JSONSchema RawJSON `json:"json_schema,omitempty" yaml:"json_schema"`
	// Contains lists strings the output must contain.
	Contains Strings `json:"contains,omitempty" yaml:"contains"`
	// NotContains lists strings the output must not contain.
	NotContains Strings `json:"not_contains,omitempty" yaml:"not_contains"`
	// MinTokensPerSecond is the slowest acceptable generation rate.
	MinTokensPerSecond float64 `json:"min_tokens_per_second,omitempty" yaml:"min_tokens_per_second"`
	// MaxFirstTokenLatency is the longest acceptable time to the first
	// token.
	MaxFirstTokenLatency Duration `json:"max_first_token_latency,omitempty" yaml:"max_first_token_latency"`
}

// Limits on a manifest, so a hostile one cannot make a device allocate or
// work without bound.
const (
	maxEnvelopeBytes = 1 << 20
	maxArtifacts     = 64
	maxChecks        = 32
	maxPromptBytes   = 64 << 10
	maxCheckTokens   = 8192
)

var (
	namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)
	sha256Hex   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	knownArch   = []string{"386", "amd64", "arm", "arm64", "loong64", "mips64le", "ppc64le", "riscv64", "s390x"}
)

// FieldError is one broken rule, at a path such as "artifacts[1].sha256".
type FieldError struct {
	Path string
	Msg  string
}

func (e FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// ValidationError lists every broken rule of a manifest at once. It
// matches ErrMalformed with errors.Is.
type ValidationError struct{ Fields []FieldError }

func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		msgs[i] = f.Error()
	}
	return ErrMalformed.Error() + ": " + strings.Join(msgs, "; ")
}

// Is makes errors.Is(err, ErrMalformed) true.
func (e *ValidationError) Is(target error) bool { return target == ErrMalformed }

// Validate checks every rule of FORMAT.md that does not depend on the
// device and returns a *ValidationError listing all that are broken.
func (m *Manifest) Validate() error {
	var errs []FieldError
	bad := func(path, format string, args ...any) {
		errs = append(errs, FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	m.validateScope(bad)
	if m.Version < 1 {
		bad("version", "want an integer ≥ 1, got %d", m.Version)
	}
	switch {
	case len(m.Artifacts) == 0:
		bad("artifacts", "want at least one artifact")
	case len(m.Artifacts) > maxArtifacts:
		bad("artifacts", "at most %d artifacts, got %d", maxArtifacts, len(m.Artifacts))
	}
	names := map[string]int{}
	models := map[string]bool{}
	for i, a := range m.Artifacts {
		p := fmt.Sprintf("artifacts[%d]", i)
		validateArtifact(p, a, bad)
		if j, dup := names[a.Name]; dup && a.Name != "" {
			bad(p+".name", "duplicate name %q (also artifacts[%d])", a.Name, j)
		} else {
			names[a.Name] = i
		}
		if a.Kind == KindModel {
			models[a.Name] = true
		}
	}
	if len(m.Checks) > maxChecks {
		bad("checks", "at most %d checks, got %d", maxChecks, len(m.Checks))
	}
	for i, c := range m.Checks {
		validateCheck(fmt.Sprintf("checks[%d]", i), c, models, bad)
	}
	if len(errs) > 0 {
		return &ValidationError{Fields: errs}
	}
	return nil
}

type badFunc func(path, format string, args ...any)

func validateArtifact(p string, a Artifact, bad badFunc) {
	switch a.Kind {
	case KindModel, KindPipelines:
	case "":
		bad(p+".kind", "missing: want model or pipelines")
	default:
		bad(p+".kind", "unknown kind %q: want model or pipelines", a.Kind)
	}
	switch {
	case a.Name == "":
		bad(p+".name", "missing")
	case !namePattern.MatchString(a.Name):
		bad(p+".name", "%q must be 1-64 letters, digits, '.', '_', ':' or '-'", a.Name)
	}
	validateURL(p+".url", a.URL, bad)
	switch {
	case a.SHA256 == "":
		bad(p+".sha256", "missing")
	case !sha256Hex.MatchString(a.SHA256):
		bad(p+".sha256", "want 64 lower-case hex digits, got %q", a.SHA256)
	}
	if a.Size <= 0 {
		bad(p+".size", "want a size in bytes > 0, got %d", a.Size)
	}
	if a.Kind == KindModel && a.License == "" {
		bad(p+".license", "missing: every model names its license (an SPDX id such as apache-2.0)")
	}
	if len(a.License) > 128 {
		bad(p+".license", "longer than 128 characters")
	}
	if a.Requires.MinMemory < 0 {
		bad(p+".requires.min_memory", "want a size ≥ 0, got %d", a.Requires.MinMemory)
	}
	for j, arch := range a.Requires.Arch {
		if !slices.Contains(knownArch, arch) {
			bad(fmt.Sprintf("%s.requires.arch[%d]", p, j), "unknown architecture %q: want one of %s", arch, strings.Join(knownArch, ", "))
		}
	}
}

func validateCheck(p string, c Check, models map[string]bool, bad badFunc) {
	if c.Model != "" && !models[c.Model] {
		bad(p+".model", "%q is not a model artifact of this manifest", c.Model)
	}
	switch {
	case strings.TrimSpace(c.Prompt) == "":
		bad(p+".prompt", "missing")
	case len(c.Prompt) > maxPromptBytes:
		bad(p+".prompt", "longer than %d bytes", maxPromptBytes)
	}
	if c.MaxTokens < 1 || c.MaxTokens > maxCheckTokens {
		bad(p+".max_tokens", "want 1..%d, got %d", maxCheckTokens, c.MaxTokens)
	}
	if c.JSONSchema != nil {
		if t := bytes.TrimSpace(c.JSONSchema); len(t) == 0 || (t[0] != '{' && string(t) != "true" && string(t) != "false") {
			bad(p+".json_schema", "want a JSON Schema object")
		}
	}
	for _, f := range []struct {
		name string
		list Strings
	}{{"contains", c.Contains}, {"not_contains", c.NotContains}} {
		for j, s := range f.list {
			if s == "" {
				bad(fmt.Sprintf("%s.%s[%d]", p, f.name, j), "empty string")
			}
		}
	}
	if c.MinTokensPerSecond < 0 {
		bad(p+".min_tokens_per_second", "want ≥ 0, got %v", c.MinTokensPerSecond)
	}
	if c.MaxFirstTokenLatency < 0 {
		bad(p+".max_first_token_latency", "want ≥ 0, got %v", time.Duration(c.MaxFirstTokenLatency))
	}
}

func validateURL(path, raw string, bad badFunc) {
	if raw == "" {
		bad(path, "missing")
		return
	}
	u, err := url.Parse(raw)
	if err != nil {
		bad(path, "not a URL: %v", err)
		return
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		bad(path, "scheme %q: want http or https", u.Scheme)
		return
	}
	if u.Host == "" {
		bad(path, "no host in %q", raw)
	}
}

// Bytes is a size in bytes. In YAML it may carry a unit ("512MiB",
// "2GB"); in JSON it is an integer. It is bytesize.Size, so manifests and
// the daemon's config read sizes alike.
type Bytes = bytesize.Size

// Duration is a time.Duration written as a Go duration string ("750ms",
// "2s") in both YAML and JSON.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes the duration as a string such as "1.5s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string like \"750ms\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration like 750ms or 2s, got %q", s)
	}
	*d = Duration(v)
	return nil
}

// RawJSON is a JSON value kept as bytes (a JSON Schema). In YAML it is
// written as ordinary YAML and converted.
type RawJSON []byte

// MarshalJSON returns the bytes as they are.
func (r RawJSON) MarshalJSON() ([]byte, error) {
	if r == nil {
		return []byte("null"), nil
	}
	return r, nil
}

// UnmarshalJSON keeps a copy of the value's bytes.
func (r *RawJSON) UnmarshalJSON(b []byte) error {
	*r = append(RawJSON(nil), b...)
	return nil
}

// Strings is a list of strings; YAML also accepts a single string.
type Strings []string

// hexDigest returns the hex sha256 digest of b.
func hexDigest(sum [32]byte) string { return hex.EncodeToString(sum[:]) }
