package config

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"time"
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
