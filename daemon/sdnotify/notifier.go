package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Environment variables the service manager sets for a notify service.
const (
	// EnvSocket names the notification socket.
	EnvSocket = "NOTIFY_SOCKET"
	// EnvWatchdogUsec holds the watchdog timeout in microseconds.
	EnvWatchdogUsec = "WATCHDOG_USEC"
	// EnvWatchdogPID names the process the watchdog timeout is meant for.
	EnvWatchdogPID = "WATCHDOG_PID"
)

// The assignments systemd acts on, as sd_notify(3) defines them.
const (
	StateReady    = "READY=1"
	StateStopping = "STOPPING=1"
	StateWatchdog = "WATCHDOG=1"
)

// sendTimeout bounds one send. The socket is a datagram socket the manager
// reads promptly; a send that cannot complete in this time means the manager
// is wedged, and waiting longer would only stall the caller (the watchdog
// loop, or shutdown).
const sendTimeout = time.Second

// maxSockaddrPath is the size of sun_path in struct sockaddr_un on Linux. A
// path socket needs room for its terminating NUL; an abstract one uses the
// leading NUL in place of the "@".
const maxSockaddrPath = 108

// Notifier sends notifications to the service manager. The zero value and
// a nil *Notifier are disabled: every method returns nil without doing
// anything. A Notifier is safe for concurrent use; each notification is one
// datagram on its own short-lived socket, as libsystemd's sd_notify sends it.
type Notifier struct {
	addr *net.UnixAddr
}

// New returns a Notifier that sends to addr: an absolute path to a unix
// datagram socket, or an abstract socket name with a leading "@". An empty
// addr returns a disabled Notifier. Any other address is an error wrapping
// ErrBadAddress or ErrUnsupportedAddress; the socket itself is not opened
// until the first notification.
func New(addr string) (*Notifier, error) {
	switch {
	case addr == "":
		return &Notifier{}, nil
	case strings.HasPrefix(addr, "vsock"): // vsock:, vsock-dgram:, vsock-stream:, …
		return nil, fmt.Errorf("notification socket %q: %w (only unix sockets)", addr, ErrUnsupportedAddress)
	case addr == "@" || !(addr[0] == '/' || addr[0] == '@'):
		return nil, fmt.Errorf("notification socket %q: %w: want an absolute path or @abstract-name", addr, ErrBadAddress)
	case addr[0] == '/' && len(addr) >= maxSockaddrPath,
		addr[0] == '@' && len(addr) > maxSockaddrPath:
		return nil, fmt.Errorf("notification socket %q: %w: longer than a unix socket address allows (%d bytes)",
			addr, ErrBadAddress, maxSockaddrPath)
	}
	// Go's net package turns a leading "@" into the NUL byte that marks
	// an abstract socket on Linux.
	return &Notifier{addr: &net.UnixAddr{Name: addr, Net: "unixgram"}}, nil
}

// FromEnv returns a Notifier for the socket $NOTIFY_SOCKET names, or a
// disabled one when it is unset or empty. It leaves the variable set:
// emberd starts no child processes that could mistake it for their own.
func FromEnv() (*Notifier, error) {
	n, err := New(os.Getenv(EnvSocket))
	if err != nil {
		return nil, fmt.Errorf("$%s: %w", EnvSocket, err)
	}
	return n, nil
}

// Enabled reports whether notifications are sent anywhere.
func (n *Notifier) Enabled() bool {
	return n != nil && n.addr != nil
}

// Addr returns the socket address notifications go to, or "" when disabled.
func (n *Notifier) Addr() string {
	if !n.Enabled() {
		return ""
	}
	return n.addr.Name
}

// Notify sends the assignments (such as "READY=1", "STATUS=loading") in
// one datagram, so the manager applies them together. Each must be
// KEY=VALUE on one line; otherwise nothing is sent and the error wraps
// ErrBadState. A disabled Notifier returns nil.
func (n *Notifier) Notify(states ...string) error {
	if !n.Enabled() || len(states) == 0 {
		return nil
	}
	for _, s := range states {
		key, _, ok := strings.Cut(s, "=")
		if !ok || key == "" || strings.ContainsAny(s, "\n\x00") {
			return fmt.Errorf("notify %q: %w: want KEY=VALUE on one line", s, ErrBadState)
		}
	}
	msg := strings.Join(states, "\n")
	conn, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("notify %s: %w", n.addr.Name, err)
	}
	defer conn.Close()
	if err := conn.SetWriteDeadline(time.Now().Add(sendTimeout)); err != nil {
		return fmt.Errorf("notify %s: %w", n.addr.Name, err)
	}
	if _, err := conn.Write([]byte(msg)); err != nil {
		return fmt.Errorf("notify %s: %w", n.addr.Name, err)
	}
	return nil
}

// Ready tells the manager that start-up is complete: for Type=notify, the
// unit becomes active, units ordered after it start, and the watchdog (if
// any) starts counting. Send it once the daemon can serve requests.
func (n *Notifier) Ready() error { return n.Notify(StateReady) }

// Stopping tells the manager that the daemon is shutting down, so that it
// is shown as deactivating and a stop timeout, not the watchdog, bounds the
// rest of its life.
func (n *Notifier) Stopping() error { return n.Notify(StateStopping) }

// Reloading tells the manager that the daemon is rereading its
// configuration; send Ready when done. It carries the CLOCK_MONOTONIC time
// (MONOTONIC_USEC), which Type=notify-reload units (systemd 253 and later)
// require to match the reload request to its completion.
func (n *Notifier) Reloading() error {
	if !n.Enabled() {
		return nil
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return fmt.Errorf("notify reloading: read the monotonic clock: %w", err)
	}
	usec := ts.Nano() / int64(time.Microsecond)
	return n.Notify("RELOADING=1", "MONOTONIC_USEC="+strconv.FormatInt(usec, 10))
}

// Watchdog sends one keep-alive ping. Prefer a Watchdog, which pings only
// while the daemon is healthy.
func (n *Notifier) Watchdog() error { return n.Notify(StateWatchdog) }

// Status sets the free-form status line `systemctl status` shows. The
// protocol carries one line per assignment, so line breaks become spaces.
func (n *Notifier) Status(status string) error {
	status = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "\x00", "").Replace(status)
	return n.Notify("STATUS=" + status)
}

// ExtendTimeout asks the manager for d more time than the current start,
// stop or runtime timeout allows, counted from now: a daemon loading a large
// model from slow storage sends it before each model so that
// TimeoutStartSec= need not cover the worst case. d must be positive.
func (n *Notifier) ExtendTimeout(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("extend timeout by %v: %w: want a positive duration", d, ErrBadState)
	}
	return n.Notify("EXTEND_TIMEOUT_USEC=" + strconv.FormatInt(d.Microseconds(), 10))
}

// WatchdogInterval returns the watchdog timeout the service manager
// enforces on this process: $WATCHDOG_USEC, when $WATCHDOG_PID is unset or
// names this process. It returns 0 when no watchdog is configured or the
// variables were meant for another process (inherited from a parent), and
// an error wrapping ErrBadWatchdog when they are malformed. Ping at least
// every half of it; a Watchdog does.
func WatchdogInterval() (time.Duration, error) {
	return watchdogInterval(os.Getenv(EnvWatchdogUsec), os.Getenv(EnvWatchdogPID), os.Getpid())
}

// watchdogInterval is WatchdogInterval on explicit values, following
// sd_watchdog_enabled(3).
func watchdogInterval(usec, pid string, self int) (time.Duration, error) {
	if usec == "" {
		return 0, nil
	}
	u, err := strconv.ParseUint(usec, 10, 64)
	if err != nil || u == 0 || u > uint64(1<<63-1)/uint64(time.Microsecond) {
		return 0, fmt.Errorf("$%s=%q: %w: want a positive number of microseconds", EnvWatchdogUsec, usec, ErrBadWatchdog)
	}
	if pid != "" {
		p, err := strconv.Atoi(pid)
		if err != nil || p <= 0 {
			return 0, fmt.Errorf("$%s=%q: %w: want a process id", EnvWatchdogPID, pid, ErrBadWatchdog)
		}
		if p != self {
			return 0, nil
		}
	}
	return time.Duration(u) * time.Microsecond, nil
}
