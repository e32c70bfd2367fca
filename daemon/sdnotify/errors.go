package sdnotify

import "errors"

var (
	// ErrBadAddress is returned by New and FromEnv for a notification
	// socket address that is neither an absolute path nor an abstract
	// socket name ("@name"), or that does not fit a unix socket address.
	ErrBadAddress = errors.New("bad notification socket address")

	// ErrUnsupportedAddress is returned by New and FromEnv for an address
	// family systemd may use but this package does not speak, such as
	// "vsock:CID:PORT" (systemd 254 and later, for virtual machines).
	ErrUnsupportedAddress = errors.New("unsupported notification socket address")

	// ErrBadState is returned by Notify for an assignment that is not
	// KEY=VALUE on one line: a newline would split it into two.
	ErrBadState = errors.New("bad notification state")

	// ErrBadWatchdog is returned by WatchdogInterval when $WATCHDOG_USEC or
	// $WATCHDOG_PID is set but is not a positive integer.
	ErrBadWatchdog = errors.New("bad watchdog environment")
)
