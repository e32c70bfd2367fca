package hw

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
)

// ErrNotPresent reports that a source of hardware information does not
// exist on this machine: a board without a device tree, a VM without thermal
// zones, a box without a GPU. It is the expected answer on some hardware, so
// collectors record it in Profile.Missing, log it quietly and move on.
var ErrNotPresent = errors.New("not present")

// ErrBadRoot is returned by Detect when a root it must read through (the
// proc or sys root) is missing or not a directory: a misconfiguration, not
// missing hardware, and never silently replaced by the host's own /proc.
var ErrBadRoot = errors.New("unusable root directory")

// notPresent returns an error that wraps ErrNotPresent with what is absent.
func notPresent(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrNotPresent)
}

// fileErr classifies a failed read of path: a file that does not exist is
// absent hardware; anything else (permissions, I/O) is a real failure.
func fileErr(path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", path, ErrNotPresent)
	}
	return fmt.Errorf("reading %s: %w", path, err)
}

// sensorErr is fileErr for sensor values: a sysfs attribute whose sensor is
// powered down answers its read with ENODATA, EINVAL or EAGAIN, which means
// "no reading now", not a broken source.
func sensorErr(path string, err error) error {
	for _, errno := range []syscall.Errno{syscall.ENODATA, syscall.EINVAL, syscall.EAGAIN, syscall.ENXIO} {
		if errors.Is(err, errno) {
			return fmt.Errorf("%s: %w: %w", path, err, ErrNotPresent)
		}
	}
	return fileErr(path, err)
}
