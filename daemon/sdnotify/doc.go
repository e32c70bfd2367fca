// Package sdnotify speaks systemd's service notification protocol
// (sd_notify(3)) in pure Go, without libsystemd: it tells the service
// manager when emberd is ready, when it is stopping, what it is doing, and
// that it is still alive.
//
// The protocol is one datagram per notification, sent to the unix datagram
// socket named by $NOTIFY_SOCKET (a file system path, or an abstract socket
// written with a leading "@"), holding newline-separated KEY=VALUE
// assignments such as "READY=1". systemd attributes each datagram to the
// sending process by its kernel-supplied credentials, so with the default
// NotifyAccess=main only the daemon's own process may send.
//
// A Notifier is built from an explicit address with New, or from the
// environment with FromEnv. Without an address every method is a no-op
// that returns nil, so the daemon runs the same way under systemd, in a
// terminal and in tests; a nil *Notifier behaves the same.
//
// The watchdog: when a unit sets WatchdogSec=, systemd passes the timeout
// in $WATCHDOG_USEC (and the process it is meant for in $WATCHDOG_PID) and
// kills and restarts the service when no "WATCHDOG=1" arrives in time.
// WatchdogInterval reads it; a Watchdog sends the pings from one goroutine,
// and only while a health check passes, so a daemon whose main loop hangs
// stops pinging and is restarted instead of lingering half alive.
package sdnotify
