// Package buildinfo holds the version stamped into ember's binaries at
// link time (make sets these with -ldflags -X).
package buildinfo

import "runtime"

// Set at link time; the defaults mark a build made without make.
var (
	Version   = "dev"
	Commit    = "unknown"
	BuildDate = "unknown"
)

// GoVersion is the Go toolchain the binary was built with.
func GoVersion() string { return runtime.Version() }

// String is the one-line version printed by --version.
func String() string {
	return Version + " (commit " + Commit + ", built " + BuildDate + ", " + runtime.Version() + ")"
}
