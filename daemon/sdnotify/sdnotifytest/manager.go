// Package sdnotifytest stands in for systemd's notification socket in
// tests: a Manager listens on a unix datagram socket, as systemd does for a
// Type=notify service, and returns each notification with the credentials
// the kernel attached to it, which is how systemd decides which process
// sent it (NotifyAccess=main accepts only the main process).
package sdnotifytest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Message is one notification datagram.
type Message struct {
	// Lines are its KEY=VALUE assignments in the order sent.
	Lines []string
	// PID, UID and GID are the sender's credentials (SCM_CREDENTIALS).
	PID, UID, GID int
}

// Get returns the value of the last assignment to key.
func (m Message) Get(key string) (string, bool) {
	val, found := "", false
	for _, l := range m.Lines {
		if k, v, ok := strings.Cut(l, "="); ok && k == key {
			val, found = v, true
		}
	}
	return val, found
}

// Has reports whether the message holds the assignment state ("READY=1").
func (m Message) Has(state string) bool {
	for _, l := range m.Lines {
		if l == state {
			return true
		}
	}
	return false
}

func (m Message) String() string {
	return fmt.Sprintf("pid %d: %q", m.PID, m.Lines)
}

// Manager is a notification socket. It has no goroutine of its own: Next
// reads from the socket in the caller's goroutine.
type Manager struct {
	conn *net.UnixConn
	addr string
}

var abstractSeq atomic.Uint64

// NewManager listens on a new notification socket: a path in a temporary
// directory, or an abstract socket when abstract is true. The socket is
// closed (and the path removed) when the test ends.
func NewManager(t testing.TB, abstract bool) *Manager {
	t.Helper()
	var addr string
	if abstract {
		addr = fmt.Sprintf("@ember-sdnotifytest-%d-%d", os.Getpid(), abstractSeq.Add(1))
	} else {
		dir := t.TempDir()
		if len(dir) > 90 { // sun_path holds 108 bytes; t.TempDir can be long
			var err error
			if dir, err = os.MkdirTemp("/tmp", "sdn"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
		}
		addr = filepath.Join(dir, "notify.sock")
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen on notification socket %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	raw, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_PASSCRED, 1)
	}); err != nil || serr != nil {
		t.Fatalf("SO_PASSCRED on %s: %v %v", addr, err, serr)
	}
	return &Manager{conn: conn, addr: addr}
}

// Addr is the socket's address as NOTIFY_SOCKET spells it.
func (m *Manager) Addr() string { return m.addr }

// ErrTimeout is returned by Next when no notification arrived in time.
var ErrTimeout = errors.New("no notification")

// Next returns the next notification, or ErrTimeout when none arrives
// within timeout.
func (m *Manager) Next(timeout time.Duration) (Message, error) {
	if err := m.conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return Message{}, err
	}
	buf := make([]byte, 4096)
	oob := make([]byte, syscall.CmsgSpace(syscall.SizeofUcred))
	n, oobn, _, _, err := m.conn.ReadMsgUnix(buf, oob)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return Message{}, fmt.Errorf("%w within %v on %s", ErrTimeout, timeout, m.addr)
	}
	if err != nil {
		return Message{}, err
	}
	msg := Message{Lines: strings.Split(string(buf[:n]), "\n"), PID: -1, UID: -1, GID: -1}
	cmsgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return msg, fmt.Errorf("parse credentials: %w", err)
	}
	for _, c := range cmsgs {
		if cred, err := syscall.ParseUnixCredentials(&c); err == nil {
			msg.PID, msg.UID, msg.GID = int(cred.Pid), int(cred.Uid), int(cred.Gid)
		}
	}
	return msg, nil
}

// WaitFor returns the first notification holding state, failing the test
// when none arrives within timeout. The notifications before it are
// returned too, oldest first, so a test can check what came in between.
func (m *Manager) WaitFor(t testing.TB, state string, timeout time.Duration) (Message, []Message) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var before []Message
	for {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("no %s within %v on %s; got %v", state, timeout, m.addr, before)
		}
		msg, err := m.Next(left)
		if err != nil {
			t.Fatalf("waiting for %s: %v; got %v", state, err, before)
		}
		if msg.Has(state) {
			return msg, before
		}
		before = append(before, msg)
	}
}
