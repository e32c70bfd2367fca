package api

import (
	"context"
	"fmt"
	"net"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// peerCreds are transport credentials for the unix socket that learn the
// connecting process's uid and pid from the kernel (SO_PEERCRED), so that
// the audit log can say who acted.
type peerCreds struct{}

// unixPeer is the AuthInfo of a unix socket connection.
type unixPeer struct {
	credentials.CommonAuthInfo
	UID, PID int
	Known    bool
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
					info.UID, info.PID, info.Known = int(cred.Uid), int(cred.Pid), true
				}
			})
		}
	}
	return c, info, nil
}

func (peerCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "unix-peercred"}
}
func (p peerCreds) Clone() credentials.TransportCredentials { return p }
func (peerCreds) OverrideServerName(string) error           { return nil }

// actor describes who made a call, for the audit log.
func actor(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "unknown"
	}
	if u, ok := p.AuthInfo.(unixPeer); ok && u.Known {
		return fmt.Sprintf("uid %d (pid %d) via unix socket", u.UID, u.PID)
	}
	if p.Addr != nil {
		return p.Addr.Network() + " " + p.Addr.String()
	}
	return "unknown"
}
