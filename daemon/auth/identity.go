package auth

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind is how a caller proved who it is.
type Kind int

// The kinds of identity.
const (
	// Anonymous callers proved nothing: TCP without a certificate or a
	// token.
	Anonymous Kind = iota
	// Unix callers came through the unix socket; the kernel vouches for
	// their uid and gid (SO_PEERCRED).
	Unix
	// Cert callers presented a client certificate the client CA signed.
	Cert
	// Token callers presented a valid bearer token.
	Token
)

// Identity is who a caller is, and its role once a Mapping resolved it.
type Identity struct {
	Kind Kind
	// UID, GID and PID are the unix peer's; User and Group name UID and
	// GID when the system knows them. Groups are the names of the user's
	// supplementary groups and GIDs their ids.
	UID, GID, PID int
	User, Group   string
	GIDs          []int
	Groups        []string
	// CertName is the client certificate's subject CN, or its first SAN
	// when the CN is empty.
	CertName string
	// TokenName is the bearer token's name, and TokenRole the role it was
	// created with.
	TokenName string
	TokenRole Role
	// Addr is the remote address of a TCP caller.
	Addr string
	// Role is what the caller may do; None until resolved.
	Role Role
}

// String names the caller for a denial: "uid 1000 (alice)",
// "certificate CN=line3-hmi", "token ci", "an unauthenticated caller".
func (id Identity) String() string {
	switch id.Kind {
	case Unix:
		if id.User != "" {
			return fmt.Sprintf("uid %d (%s)", id.UID, id.User)
		}
		return fmt.Sprintf("uid %d", id.UID)
	case Cert:
		return "certificate CN=" + id.CertName
	case Token:
		return "token " + id.TokenName
	}
	return "an unauthenticated caller"
}

// Actor names the caller for the audit log, with where it came from:
// "uid 1000 (alice) pid 4242 via unix socket", "token ci from tcp
// 10.0.0.5:51234".
func (id Identity) Actor() string {
	switch id.Kind {
	case Unix:
		return fmt.Sprintf("%s pid %d via unix socket", id, id.PID)
	case Anonymous:
		return "unauthenticated tcp " + id.Addr
	}
	return fmt.Sprintf("%s from tcp %s", id, id.Addr)
}

// Key identifies the caller for per-identity limits: every connection of
// one uid, certificate or token shares a key, and all anonymous callers
// share one.
func (id Identity) Key() string {
	switch id.Kind {
	case Unix:
		return "uid:" + strconv.Itoa(id.UID)
	case Cert:
		return "cert:" + id.CertName
	case Token:
		return "token:" + id.TokenName
	}
	return "anonymous"
}

// Principals lists the principals the caller matches in auth.roles.
func (id Identity) Principals() []string {
	switch id.Kind {
	case Unix:
		out := []string{"uid:" + strconv.Itoa(id.UID), "gid:" + strconv.Itoa(id.GID)}
		if id.User != "" {
			out = append(out, "user:"+id.User)
		}
		if id.Group != "" {
			out = append(out, "group:"+id.Group)
		}
		for _, g := range id.GIDs {
			out = append(out, "gid:"+strconv.Itoa(g))
		}
		for _, g := range id.Groups {
			out = append(out, "group:"+g)
		}
		return out
	case Cert:
		return []string{"cert:" + id.CertName}
	case Token:
		return []string{"token:" + id.TokenName}
	}
	return []string{"anonymous"}
}

// ParsePrincipal checks one principal of auth.roles and returns it in
// its canonical form.
func ParsePrincipal(s string) (string, error) {
	if s == "anonymous" {
		return s, nil
	}
	kind, val, ok := strings.Cut(s, ":")
	if !ok || val == "" || strings.TrimSpace(val) != val {
		return "", fmt.Errorf("%q: %w", s, ErrBadPrincipal)
	}
	switch kind {
	case "uid", "gid":
		n, err := strconv.ParseUint(val, 10, 32)
		if err != nil {
			return "", fmt.Errorf("%q: %w", s, ErrBadPrincipal)
		}
		return kind + ":" + strconv.FormatUint(n, 10), nil
	case "user", "group", "cert":
		return s, nil
	case "token":
		if err := CheckTokenName(val); err != nil {
			return "", fmt.Errorf("%q: %w", s, err)
		}
		return s, nil
	}
	return "", fmt.Errorf("%q: %w", s, ErrBadPrincipal)
}

// Mapping gives identities their roles.
type Mapping struct {
	principals map[string]Role
	selfUID    int
	anonymous  bool
}

// NewMapping builds a mapping from auth.roles (role name → principals).
// selfUID is the daemon's own uid, which is admin like root; anonymous
// says whether unauthenticated TCP callers are let in at all
// (grpc.allow_unauthenticated_tcp).
func NewMapping(roles map[string][]string, selfUID int, anonymous bool) (*Mapping, error) {
	m := &Mapping{principals: map[string]Role{}, selfUID: selfUID, anonymous: anonymous}
	for name, ps := range roles {
		r, err := ParseRole(name)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			c, err := ParsePrincipal(p)
			if err != nil {
				return nil, err
			}
			m.principals[c] = max(m.principals[c], r)
		}
	}
	return m, nil
}

// Resolve returns id with its role set: admin for root and the daemon's
// own uid; for others the highest of the roles their principals are
// given, a token's own role, and viewer. An anonymous caller gets None
// unless anonymous callers are allowed, and then viewer or what the
// "anonymous" principal is given.
func (m *Mapping) Resolve(id Identity) Identity {
	role := Viewer
	switch id.Kind {
	case Unix:
		if id.UID == 0 || id.UID == m.selfUID {
			id.Role = Admin
			return id
		}
	case Token:
		role = max(role, id.TokenRole)
	case Anonymous:
		if !m.anonymous {
			id.Role = None
			return id
		}
	}
	for _, p := range id.Principals() {
		role = max(role, m.principals[p])
	}
	id.Role = role
	return id
}
