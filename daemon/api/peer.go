package api

import (
	"context"
	"net"
	"os/user"
	"strconv"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/ember-edge/ember/daemon/auth"
)

// peerCreds are transport credentials for the unix socket that learn the
// connecting process's uid, gid and pid from the kernel (SO_PEERCRED)
// and the names the system gives them, once per connection. The
// authorization interceptor turns them into an auth.Identity.
type peerCreds struct{}

// unixPeer is the AuthInfo of a unix socket connection.
type unixPeer struct {
	credentials.CommonAuthInfo
	UID, GID, PID int
	User, Group   string
	// GIDs and Groups are the user's supplementary groups (from the
	// system's group database: SO_PEERCRED carries only the primary gid).
	GIDs   []int
	Groups []string
	Known  bool
}

func (unixPeer) AuthType() string { return "unix-peercred" }

func (peerCreds) ClientHandshake(_ context.Context, _ string, c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c, unixPeer{}, nil
}

func (peerCreds) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	info := unixPeer{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}
	if uc, ok := c.(*net.UnixConn); ok {
		if raw, err := uc.SyscallConn(); err == nil {
			raw.Control(func(fd uintptr) {
				if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
					info.UID, info.GID, info.PID, info.Known = int(cred.Uid), int(cred.Gid), int(cred.Pid), true
				}
			})
		}
	}
	if info.Known {
		info.name()
	}
	return c, info, nil
}

// name looks up the user and group names and the supplementary groups.
// A uid the system does not know keeps its number only.
func (p *unixPeer) name() {
	if g, err := user.LookupGroupId(strconv.Itoa(p.GID)); err == nil {
		p.Group = g.Name
	}
	u, err := user.LookupId(strconv.Itoa(p.UID))
	if err != nil {
		return
	}
	p.User = u.Username
	ids, err := u.GroupIds()
	if err != nil {
		return
	}
	for _, id := range ids {
		n, err := strconv.Atoi(id)
		if err != nil || n == p.GID {
			continue
		}
		p.GIDs = append(p.GIDs, n)
		if g, err := user.LookupGroupId(id); err == nil {
			p.Groups = append(p.Groups, g.Name)
		}
	}
}

func (p unixPeer) identity() auth.Identity {
	return auth.Identity{Kind: auth.Unix, UID: p.UID, GID: p.GID, PID: p.PID, User: p.User, Group: p.Group,
		GIDs: p.GIDs, Groups: p.Groups}
}

func (peerCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "unix-peercred"}
}
func (p peerCreds) Clone() credentials.TransportCredentials { return p }
func (peerCreds) OverrideServerName(string) error           { return nil }

// actor describes who made a call, for the audit log: the identity the
// authorization interceptor established, else the peer's address.
func actor(ctx context.Context) string {
	if id, ok := identityFrom(ctx); ok {
		return id.Actor()
	}
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "unknown"
	}
	if p.Addr != nil {
		return p.Addr.Network() + " " + p.Addr.String()
	}
	return "unknown"
}
