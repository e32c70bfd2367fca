package config

import (
	"fmt"
	"slices"

	"github.com/ember-edge/ember/daemon/auth"
)

// Auth configures who may do what over the API (daemon/auth).
type Auth struct {
	// Roles maps a role (viewer, technician, operator, admin) to the
	// principals given it: uid:N, gid:N, user:NAME, group:NAME, cert:CN,
	// token:NAME, or anonymous (unauthenticated TCP callers, when
	// grpc.allow_unauthenticated_tcp lets them in). A caller gets the
	// highest role any of its principals has; root and emberd's own uid
	// are always admin; everyone else who can connect is at least viewer.
	Roles map[string][]string `yaml:"roles"`
	// MaxTokens caps max_tokens of one inference request or job, per
	// role; a role without an entry (or 0) is capped only by the engine.
	// Absent, it is {technician: 512}.
	MaxTokens map[string]int `yaml:"max_tokens"`
	// MaxStreams caps the inference calls (Generate, Chat, Embed,
	// Tokenize) one identity runs at once, per role; a role without an
	// entry (or 0) is not capped. Absent, it is {viewer: 1, technician: 4}.
	MaxStreams map[string]int `yaml:"max_streams"`
}

// DefaultMaxRecvMsgSize bounds one gRPC request message when
// grpc.max_recv_msg_size is not set: gRPC's own default, and far above
// engine.max_prompt_bytes.
const DefaultMaxRecvMsgSize = 4 << 20

func (c *Config) deriveAuth() {
	if c.Auth.MaxTokens == nil {
		c.Auth.MaxTokens = map[string]int{"technician": 512}
	}
	if c.Auth.MaxStreams == nil {
		c.Auth.MaxStreams = map[string]int{"viewer": 1, "technician": 4}
	}
	if c.GRPC.MaxRecvMsgSize == 0 {
		c.GRPC.MaxRecvMsgSize = DefaultMaxRecvMsgSize
	}
}

// AuthLimits returns auth.max_tokens and auth.max_streams by role. It
// expects a validated config (unknown role names are skipped).
func (c *Config) AuthLimits() auth.Limits {
	l := auth.Limits{MaxTokens: map[auth.Role]int{}, MaxStreams: map[auth.Role]int{}}
	for name, n := range c.Auth.MaxTokens {
		if r, err := auth.ParseRole(name); err == nil {
			l.MaxTokens[r] = n
		}
	}
	for name, n := range c.Auth.MaxStreams {
		if r, err := auth.ParseRole(name); err == nil {
			l.MaxStreams[r] = n
		}
	}
	return l
}

// TCPAuthenticated reports whether the TCP listener authenticates its
// callers: with TLS, by a client certificate (grpc.tls.client_ca) or a
// bearer token. Without TLS nothing can: tokens are refused over
// plaintext, where anyone on the path could read them.
func (g GRPC) TCPAuthenticated() bool { return g.TCP != "" && g.TLS.Cert != "" }

func (c *Config) validateAuth(bad badFunc) {
	a := c.Auth
	roleNames := make([]string, 0, len(a.Roles))
	for name := range a.Roles {
		roleNames = append(roleNames, name)
	}
	slices.Sort(roleNames)
	for _, name := range roleNames {
		if _, err := auth.ParseRole(name); err != nil {
			bad("auth.roles."+name, "%v", err)
			continue
		}
		for i, p := range a.Roles[name] {
			if _, err := auth.ParsePrincipal(p); err != nil {
				bad(fmt.Sprintf("auth.roles.%s[%d]", name, i), "%v", err)
			}
		}
	}
	for key, m := range map[string]map[string]int{"auth.max_tokens": a.MaxTokens, "auth.max_streams": a.MaxStreams} {
		for name, n := range m {
			if _, err := auth.ParseRole(name); err != nil {
				bad(key+"."+name, "%v", err)
			}
			if n < 0 {
				bad(key+"."+name, "must be 0 (no cap) or positive")
			}
		}
	}
	g := c.GRPC
	if g.TCP != "" && !g.TCPAuthenticated() && !g.AllowUnauthenticatedTCP {
		bad("grpc.tcp", "TCP without TLS authenticates no caller (bearer tokens are refused over plaintext): "+
			"set grpc.tls.cert and grpc.tls.key (callers then present a token or, with grpc.tls.client_ca, a certificate), "+
			"or accept anonymous callers with grpc.allow_unauthenticated_tcp: true")
	}
	if g.MaxRecvMsgSize < 1<<10 || g.MaxRecvMsgSize > 256<<20 {
		bad("grpc.max_recv_msg_size", "%s is not between 1KiB and 256MiB", g.MaxRecvMsgSize)
	}
}
