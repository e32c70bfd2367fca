package config

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
)

// Warnings returns what is valid but unsafe or likely wrong in the
// config, one sentence per finding naming its key (and line, when it came
// from the file). emberd logs each at start and `emberd check-config`
// prints them; neither refuses to run, since a plant may accept the risk
// (a broker that only speaks plain MQTT on an isolated network).
func (c *Config) Warnings() []string {
	var out []string
	warn := func(path, format string, args ...any) {
		msg := fmt.Sprintf("%s: %s", path, fmt.Sprintf(format, args...))
		if line, ok := c.lines[path]; ok {
			msg = fmt.Sprintf("line %d: %s", line, msg)
		}
		out = append(out, msg)
	}
	for _, b := range []struct {
		key, url, password string
	}{
		{"mqtt.external", c.MQTT.External.URL, c.MQTT.External.Password},
		{"uplink", c.Uplink.URL, c.Uplink.Password},
	} {
		if host, ok := passwordInClear(b.url, b.password); ok {
			warn(b.key+".url", "the broker password is sent unencrypted to %s, readable by anyone on the network path; use ssl:// (or mqtts://) with %s.ca", host, b.key)
		}
	}
	if c.Llama.LibDir != "" && c.StateDir != "" && within(c.Llama.LibDir, c.StateDir) {
		warn("llama.lib_dir", "%s is inside state_dir %s, which emberd.service mounts noexec: the libraries will not load under systemd; install them under /usr/local/lib/ember", c.Llama.LibDir, c.StateDir)
	}
	return out
}

// passwordInClear reports whether connecting to rawURL sends a password
// (the config's, or one in the URL itself) without TLS to a host other than
// this machine, and returns that host. A URL that does not parse is
// Validate's to report.
func passwordInClear(rawURL, password string) (host string, ok bool) {
	u, err := url.Parse(rawURL)
	if err != nil || rawURL == "" {
		return "", false
	}
	if _, inURL := u.User.Password(); password == "" && !inURL {
		return "", false
	}
	switch u.Scheme {
	case "tcp", "mqtt":
	default:
		return "", false // ssl, tls, mqtts
	}
	// Loopback traffic never leaves the machine: a local mosquitto with a
	// password is fine.
	name := u.Hostname()
	if name == "localhost" {
		return "", false
	}
	if ip := net.ParseIP(name); ip != nil && ip.IsLoopback() {
		return "", false
	}
	return u.Scheme + "://" + u.Host, true
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(path))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}
