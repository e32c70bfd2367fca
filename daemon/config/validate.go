package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ember-edge/ember/daemon/topic"
)

// idPattern bounds names that end up in MQTT topics and file names: no
// slashes, wildcards or spaces.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)

// Validate checks the values and returns every problem found, each naming
// its key and, when it came from the file, its line.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		msg := fmt.Sprintf("%s: %s", path, fmt.Sprintf(format, args...))
		if line, ok := c.lines[path]; ok {
			msg = fmt.Sprintf("line %d: %s", line, msg)
		}
		errs = append(errs, errors.New(msg))
	}

	if c.Version < 1 || c.Version > CurrentVersion {
		bad("version", "version %d is not supported; this emberd reads version %d", c.Version, CurrentVersion)
	}
	switch {
	case c.DeviceID == "":
		bad("device_id", "not set, and the hostname is unknown")
	case !idPattern.MatchString(c.DeviceID):
		bad("device_id", "%q must be 1-64 letters, digits, '.', '_', ':' or '-' (it is used in MQTT topics)", c.DeviceID)
	}
	if c.StateDir == "" {
		bad("state_dir", "must be set")
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown_timeout", "must be positive")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "%q is not one of text, json", c.Log.Format)
	}
	c.validateGRPC(bad)
	c.validateEngine(bad)
	c.validateModels(bad)
	c.validateStore(bad)
	c.validateMQTT(bad)
	c.validatePipelines(bad)
	c.validateUplink(bad)
	c.validateOps(bad)
	c.validateAuth(bad)
	return errors.Join(errs...)
}

type badFunc func(path, format string, args ...any)

func (c *Config) validateGRPC(bad badFunc) {
	g := c.GRPC
	if g.Socket == "" && g.TCP == "" {
		bad("grpc", "neither grpc.socket nor grpc.tcp is set, so nothing could reach emberd")
	}
	if mode, err := strconv.ParseUint(g.SocketMode, 8, 32); err != nil || mode > 0o777 {
		bad("grpc.socket_mode", "%q is not an octal permission like 0660", g.SocketMode)
	}
	if g.TCP != "" {
		if _, port, err := net.SplitHostPort(g.TCP); err != nil {
			bad("grpc.tcp", "%q is not host:port", g.TCP)
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			bad("grpc.tcp", "port %q is not a number from 0 to 65535", port)
		}
		hasTLS := g.TLS.Cert != "" || g.TLS.Key != ""
		if !hasTLS && !g.Insecure {
			bad("grpc.tcp", "TCP without TLS needs grpc.tls.cert and grpc.tls.key, or grpc.insecure: true")
		}
	}
	if (g.TLS.Cert == "") != (g.TLS.Key == "") {
		bad("grpc.tls", "cert and key must be set together")
	}
	if g.TLS.ClientCA != "" && g.TLS.Cert == "" {
		bad("grpc.tls.client_ca", "needs grpc.tls.cert and grpc.tls.key")
	}
}

func (c *Config) validateEngine(bad badFunc) {
	e := c.Engine
	if e.Threads < 0 {
		bad("engine.threads", "must be 0 (derive from the hardware) or positive")
	}
	if e.Context != 0 && e.Context < 64 {
		bad("engine.context", "must be 0 (derive) or at least 64 tokens")
	}
	if e.Parallel < 0 || e.Parallel > 64 {
		bad("engine.parallel", "must be 0 (derive) or 1 to 64")
	}
	if e.QueueSize < 1 {
		bad("engine.queue_size", "must be at least 1")
	}
	if e.MaxTokens < 1 {
		bad("engine.max_tokens", "must be at least 1")
	}
	if e.MaxPromptBytes < 1 {
		bad("engine.max_prompt_bytes", "must be at least 1")
	}
	if e.StreamInterval < 0 || e.StreamInterval.D() > time.Second {
		bad("engine.stream_interval", "must be between 0 and 1s")
	}
	if e.MemoryReserve < 0 {
		bad("engine.memory_reserve", "must not be negative")
	}
}

func (c *Config) validateModels(bad badFunc) {
	seen := map[string]bool{}
	defaults := 0
	for i, m := range c.Models {
		p := fmt.Sprintf("models[%d]", i)
		switch {
		case m.Name == "":
			bad(p+".name", "must be set")
		case !idPattern.MatchString(m.Name):
			bad(p+".name", "%q must be 1-64 letters, digits, '.', '_', ':' or '-'", m.Name)
		case seen[m.Name]:
			bad(p+".name", "%q is used by another model", m.Name)
		}
		seen[m.Name] = true
		if m.Path == "" {
			bad(p+".path", "must be set")
		}
		if m.Default {
			defaults++
			if defaults > 1 {
				bad(p+".default", "only one model can be the default")
			}
		}
		if m.Threads < 0 {
			bad(p+".threads", "must not be negative")
		}
		if m.Context != 0 && m.Context < 64 {
			bad(p+".context", "must be 0 (derive) or at least 64 tokens")
		}
	}
}

func (c *Config) validateStore(bad badFunc) {
	st := c.Store
	if st.MaxBytes < 1<<20 {
		bad("store.max_bytes", "must be at least 1MiB")
	}
	if st.MaxRecords < 1 {
		bad("store.max_records", "must be at least 1")
	}
	if st.MaxAge <= 0 {
		bad("store.max_age", "must be positive")
	}
	if st.JobRetention < 0 {
		bad("store.job_retention", "must not be negative")
	}
	if st.DedupWindow < 0 {
		bad("store.dedup_window", "must not be negative")
	}
	if st.CompactRatio <= 0 || st.CompactRatio > 1 {
		bad("store.compact_ratio", "must be more than 0 and at most 1")
	}
	if st.CompactMin < 0 {
		bad("store.compact_min", "must not be negative")
	}
}

func validHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

func (c *Config) validateMQTT(bad badFunc) {
	e := c.MQTT.Embedded
	if e.Listen != "" {
		if err := validHostPort(e.Listen); err != nil {
			bad("mqtt.embedded.listen", "%v", err)
		}
	}
	if (e.TLS.Cert == "") != (e.TLS.Key == "") {
		bad("mqtt.embedded.tls", "cert and key must be set together")
	}
	if e.TLS.Cert != "" {
		if err := validHostPort(e.TLS.Listen); err != nil {
			bad("mqtt.embedded.tls.listen", "%v", err)
		}
	} else if e.TLS.Listen != "" {
		bad("mqtt.embedded.tls.listen", "needs mqtt.embedded.tls.cert and key")
	}
	if e.MaxPayload < 1<<10 || e.MaxPayload > 256<<20 {
		bad("mqtt.embedded.max_payload", "must be between 1KiB and 256MiB")
	}
	if !e.AllowAnonymous && len(e.Users) == 0 {
		for _, l := range []struct{ key, addr string }{{"mqtt.embedded.listen", e.Listen}, {"mqtt.embedded.tls.listen", e.TLS.Listen}} {
			if l.addr != "" && validHostPort(l.addr) == nil && !Loopback(l.addr) {
				bad(l.key, "%q is reachable beyond this machine, and no mqtt.embedded.users are set: add users (with ACLs), "+
					"or set mqtt.embedded.allow_anonymous: true to let anyone on the network use the broker", l.addr)
			}
		}
	}
	validateBrokerLimits(e.Limits, bad)
	users := map[string]bool{}
	for i, u := range e.Users {
		p := fmt.Sprintf("mqtt.embedded.users[%d]", i)
		switch {
		case u.Username == "":
			bad(p+".username", "must be set")
		case users[u.Username]:
			bad(p+".username", "%q is listed twice", u.Username)
		}
		users[u.Username] = true
		if !bcryptHash.MatchString(u.PasswordHash) {
			bad(p+".password_hash", "must be a bcrypt hash ($2a$…, 60 characters); make one with `emberctl mqtt passwd`")
		}
		for j, r := range u.ACL {
			rp := fmt.Sprintf("%s.acl[%d]", p, j)
			if err := topic.ValidFilter(r.Topic); err != nil {
				bad(rp+".topic", "%v", err)
			}
			switch r.Access {
			case "read", "write", "readwrite":
			default:
				bad(rp+".access", "%q is not one of read, write, readwrite", r.Access)
			}
		}
	}
	r := c.MQTT.Requests
	if r.Priority < 0 || r.Priority > 9 {
		bad("mqtt.requests.priority", "must be from 0 (lowest) to 9 (highest)")
	}
	if r.MaxTokens < 1 || r.MaxTokens > 1<<20 {
		bad("mqtt.requests.max_tokens", "must be from 1 to 1048576")
	}
	if r.Classification != "local" && r.Classification != "shared" {
		bad("mqtt.requests.classification", "%q is not one of local, shared", r.Classification)
	}
	x := c.MQTT.External
	if x.URL != "" {
		if u, err := url.Parse(x.URL); err != nil || (u.Scheme != "tcp" && u.Scheme != "ssl" && u.Scheme != "mqtt" && u.Scheme != "mqtts") || u.Host == "" {
			bad("mqtt.external.url", "%q must look like tcp://host:1883 or ssl://host:8883", x.URL)
		}
	}
	if (x.TLS.Cert == "") != (x.TLS.Key == "") {
		bad("mqtt.external.tls", "cert and key must be set together")
	}
	if x.KeepAlive < Duration(time.Second) {
		bad("mqtt.external.keepalive", "must be at least 1s")
	}
	if x.Backoff.Min <= 0 || x.Backoff.Max < x.Backoff.Min {
		bad("mqtt.external.backoff", "min must be positive and max at least min")
	}
}

// ownTopics is the filter of ember's own topics that a pipeline's match
// must not overlap. Pipeline files parsed alone (ParsePipelines) know no
// device: there a filter that could reach any device's topics is checked
// against all of them, and one naming a device (ember/v1/<d>/…) is left
// to pipeline.Compile, which knows the device; false means no check.
func (c *Config) ownTopics(match string) (string, bool) {
	if c.DeviceID != "" {
		return topic.DeviceFilter(c.DeviceID), true
	}
	if l := topic.Levels(match); len(l) >= 3 && l[0] == "ember" && l[1] == "v1" && l[2] != "+" && l[2] != "#" {
		return "", false
	}
	return topic.DeviceFilter("+"), true
}

func validateBrokerLimits(l BrokerLimits, bad badFunc) {
	const p = "mqtt.embedded.limits."
	for _, n := range []struct {
		key       string
		v, lo, hi int
	}{
		{"max_clients", l.MaxClients, 1, 1 << 20},
		{"max_sessions", l.MaxSessions, 1, 1 << 20},
		{"max_inflight", l.MaxInflight, 1, 65535},
		{"max_queued", l.MaxQueued, 1, 1 << 20},
		{"max_retained", l.MaxRetained, 0, 1 << 24},
		{"topic_aliases", l.TopicAliases, 0, 65535},
	} {
		if n.v < n.lo || n.v > n.hi {
			bad(p+n.key, "%d is not from %d to %d", n.v, n.lo, n.hi)
		}
	}
	if l.MaxSessions < l.MaxClients {
		bad(p+"max_sessions", "must be at least max_clients (%d): every connected client has a session", l.MaxClients)
	}
	if l.SessionExpiry < Duration(time.Second) || l.SessionExpiry > Duration(math.MaxUint32*time.Second) {
		bad(p+"session_expiry", "must be from 1s to about 136 years")
	}
	if l.MaxRetainedBytes < 0 || l.MaxRetainedBytes > 1<<30 {
		bad(p+"max_retained_bytes", "must be from 0 to 1GiB")
	}
}

// Loopback reports whether a listen address (host:port) accepts only
// connections from this machine: localhost or a loopback IP. An empty
// host listens on every address, so it is not loopback.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var bcryptHash = regexp.MustCompile(`^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$`)

func (c *Config) validatePipelines(bad badFunc) {
	names := map[string]bool{}
	for i := range c.Pipelines {
		pl := &c.Pipelines[i]
		p := fmt.Sprintf("pipelines[%d]", i)
		switch {
		case pl.Name == "":
			bad(p+".name", "must be set")
		case !idPattern.MatchString(pl.Name):
			bad(p+".name", "%q must be 1-64 letters, digits, '.', '_', ':' or '-'", pl.Name)
		case names[pl.Name]:
			bad(p+".name", "%q is used by another pipeline", pl.Name)
		}
		names[pl.Name] = true
		if err := topic.ValidFilter(pl.Match); err != nil {
			bad(p+".match", "%v", err)
		} else if own, ok := c.ownTopics(pl.Match); ok && topic.Overlap(pl.Match, own) {
			bad(p+".match", "pipeline %q: filter %q overlaps emberd's own topics (%s): its results, requests and status would loop back as input; match the devices' topics", pl.Name, pl.Match, own)
		}
		switch pl.Decode {
		case "json", "text", "sparkplugb":
		default:
			bad(p+".decode", "%q is not one of json, text, sparkplugb", pl.Decode)
		}
		if strings.TrimSpace(pl.Prompt) == "" {
			bad(p+".prompt", "must be set")
		}
		if pl.MaxTokens < 0 {
			bad(p+".max_tokens", "must not be negative")
		}
		switch pl.Output.Format {
		case "text":
			if pl.Output.Schema.Kind != 0 {
				bad(p+".output.schema", "only applies to output.format: json")
			}
		case "json":
		default:
			bad(p+".output.format", "%q is not one of text, json", pl.Output.Format)
		}
		if q := *pl.Publish.QoS; q < 0 || q > 2 {
			bad(p+".publish.qos", "must be 0, 1 or 2")
		}
		if pr := *pl.Priority; pr < 0 || pr > 9 {
			bad(p+".priority", "must be from 0 (lowest) to 9 (highest)")
		}
		switch pl.Classification {
		case "shared", "local":
		default:
			bad(p+".classification", "%q is not one of shared, local", pl.Classification)
		}
		switch pl.DeadLetterPayload {
		case "digest", "raw":
		default:
			bad(p+".dead_letter_payload", "%q is not one of digest, raw", pl.DeadLetterPayload)
		}
		if (pl.Coalesce.Key == "") != (pl.Coalesce.Window == 0) {
			bad(p+".coalesce", "key and window must be set together")
		}
		if pl.Coalesce.Window < 0 {
			bad(p+".coalesce.window", "must not be negative")
		}
		if pl.RateLimit.PerSecond < 0 || pl.RateLimit.Burst < 0 {
			bad(p+".rate_limit", "per_second and burst must not be negative")
		}
		if pl.Backlog.Max < 0 {
			bad(p+".backlog.max", "must not be negative")
		}
		switch pl.Backlog.Overflow {
		case "reject", "drop_oldest":
		default:
			bad(p+".backlog.overflow", "%q is not one of reject, drop_oldest", pl.Backlog.Overflow)
		}
		switch pl.Guard {
		case "off", "flag", "quarantine":
		default:
			bad(p+".guard", "%q is not one of off, flag, quarantine", pl.Guard)
		}
		for j, a := range pl.Publish.Allow {
			if a == "" || strings.ContainsAny(a, "+#\x00") {
				bad(fmt.Sprintf("%s.publish.allow[%d]", p, j), "%q must be a topic prefix without wildcards", a)
			}
		}
	}
}

var scheduleWindow = regexp.MustCompile(`^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$`)

func (c *Config) validateUplink(bad badFunc) {
	u := c.Uplink
	if u.URL != "" {
		if pu, err := url.Parse(u.URL); err != nil || (pu.Scheme != "tcp" && pu.Scheme != "ssl" && pu.Scheme != "mqtt" && pu.Scheme != "mqtts") || pu.Host == "" {
			bad("uplink.url", "%q must look like tcp://host:1883 or ssl://host:8883", u.URL)
		}
		if u.Fleet == "" {
			bad("uplink.fleet", "must be set when uplink.url is")
		} else if !idPattern.MatchString(u.Fleet) {
			bad("uplink.fleet", "%q must be 1-64 letters, digits, '.', '_', ':' or '-' (it is used in topics)", u.Fleet)
		}
	}
	if (u.TLS.Cert == "") != (u.TLS.Key == "") {
		bad("uplink.tls", "cert and key must be set together")
	}
	if u.Backoff.Min <= 0 || u.Backoff.Max < u.Backoff.Min {
		bad("uplink.backoff", "min must be positive and max at least min")
	}
	for key, t := range map[string]string{"results": u.Topics.Results, "telemetry": u.Topics.Telemetry,
		"deadletters": u.Topics.DeadLetters, "audit": u.Topics.Audit, "ack": u.Topics.Ack} {
		if err := topic.ValidName(t); err != nil {
			bad("uplink.topics."+key, "%v", err)
		}
	}
	if u.BatchRecords < 1 || u.BatchRecords > 10000 {
		bad("uplink.batch_records", "must be from 1 to 10000")
	}
	if u.BatchBytes < 1<<10 || u.BatchBytes > 64<<20 {
		bad("uplink.batch_bytes", "must be from 1KiB to 64MiB")
	}
	if u.Window < 1 || u.Window > 1000 {
		bad("uplink.window", "must be from 1 to 1000")
	}
	if u.Bandwidth < 0 || u.DailyBudget < 0 {
		bad("uplink", "bandwidth and daily_budget must not be negative")
	}
	if u.Bandwidth > 0 && u.Bandwidth < u.BatchBytes {
		bad("uplink.bandwidth", "must be at least uplink.batch_bytes per second, or 0 for no cap")
	}
	for i, w := range u.Schedule {
		if !scheduleWindow.MatchString(w) {
			bad(fmt.Sprintf("uplink.schedule[%d]", i), "%q is not a window like 01:00-05:00", w)
		}
	}
	if u.Retention < 0 {
		bad("uplink.retention", "must not be negative")
	}
	if u.Confirm != "collector" && u.Confirm != "broker" {
		bad("uplink.confirm", "%q must be collector or broker", u.Confirm)
	}
	if u.ConfirmTimeout < Duration(time.Second) {
		bad("uplink.confirm_timeout", "must be at least 1s")
	}
	for i, r := range c.Redact {
		p := fmt.Sprintf("redact[%d]", i)
		set := 0
		for _, v := range []string{r.Pattern, r.Field, r.Builtin} {
			if v != "" {
				set++
			}
		}
		if set != 1 {
			bad(p, "set exactly one of pattern, field and builtin")
			continue
		}
		if r.Pattern != "" {
			if _, err := regexp.Compile(r.Pattern); err != nil {
				bad(p+".pattern", "%v", err)
			}
		}
		switch r.Builtin {
		case "", "email", "phone", "ipv4", "serial":
		default:
			bad(p+".builtin", "%q is not one of email, phone, ipv4, serial", r.Builtin)
		}
	}
}

func (c *Config) validateOps(bad badFunc) {
	g := c.Governors
	if g.Interval < Duration(time.Second) {
		bad("governors.interval", "must be at least 1s")
	}
	if t := g.Thermal; t.MaxCelsius != 0 {
		if t.MaxCelsius < 30 || t.MaxCelsius > 120 {
			bad("governors.thermal.max_celsius", "%g is not a plausible limit (30 to 120, or 0 to disable)", t.MaxCelsius)
		}
		if t.ResumeCelsius >= t.MaxCelsius {
			bad("governors.thermal.resume_celsius", "must be below max_celsius, or the throttle would flap")
		}
		if t.Threads < 1 || t.Parallel < 1 {
			bad("governors.thermal", "threads and parallel while throttled must be at least 1")
		}
	}
	for key, p := range map[string]int{"governors.thermal.pause_below_priority": g.Thermal.PauseBelowPriority,
		"governors.disk.pause_below_priority": g.Disk.PauseBelowPriority} {
		if p < 0 || p > 10 {
			bad(key, "must be from 0 (pause nothing) to 10 (pause everything)")
		}
	}
	if g.Disk.MinFree < 0 {
		bad("governors.disk.min_free", "must not be negative")
	}
	if c.Telemetry.Interval < 0 || (c.Telemetry.Interval > 0 && c.Telemetry.Interval < Duration(time.Second)) {
		bad("telemetry.interval", "must be 0 (off) or at least 1s")
	}
	switch c.Telemetry.Classification {
	case "shared", "local":
	default:
		bad("telemetry.classification", "%q is not one of shared, local", c.Telemetry.Classification)
	}
	if c.Metrics.Listen != "" {
		if err := validHostPort(c.Metrics.Listen); err != nil {
			bad("metrics.listen", "%v", err)
		}
	}
	switch c.Audit.Inference {
	case AuditInferenceMetadata, AuditInferenceOff:
	default:
		bad("audit.inference", "%q is not one of metadata, off", c.Audit.Inference)
	}
	if c.Audit.MaxEntries < 1000 {
		bad("audit.max_entries", "must be at least 1000")
	}
	if c.Audit.CheckpointInterval < Duration(time.Second) {
		bad("audit.checkpoint_interval", "must be at least 1s")
	}
	if c.Fleet.KeepVersions < 1 || c.Fleet.KeepVersions > 20 {
		bad("fleet.keep_versions", "must be from 1 to 20")
	}
	if c.Fleet.MaxBootAttempts < 1 {
		bad("fleet.max_boot_attempts", "must be at least 1")
	}
	if c.Fleet.Bandwidth < 0 {
		bad("fleet.bandwidth", "must not be negative")
	}
	if len(c.Fleet.TrustedKeys) > 0 && c.Uplink.URL == "" {
		bad("fleet.trusted_keys", "fleet updates arrive over the uplink: set uplink.url too")
	}
	if c.Fleet.RootKey != "" && c.Uplink.URL == "" {
		bad("fleet.root_key", "key lists arrive over the uplink: set uplink.url too")
	}
	if c.Fleet.MaxVersionJump < 1 {
		bad("fleet.max_version_jump", "must be at least 1")
	}
}
