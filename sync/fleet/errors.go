package fleet

import (
	"errors"
	"fmt"
)

// Refusals of a desired-state message. Each is wrapped with the detail
// (which field, which key, which version) so the reported reason says what
// to fix; test for them with errors.Is.
var (
	// ErrMalformed is returned for an envelope or manifest that does not
	// parse or breaks a rule of FORMAT.md: unknown or missing fields, a bad
	// sha256, a size ≤ 0, an unknown kind, duplicate artifact names, a URL
	// that is not http or https.
	ErrMalformed = errors.New("malformed manifest")

	// ErrNoSignature is returned for an envelope with no signatures.
	ErrNoSignature = errors.New("manifest is not signed")

	// ErrBadSignature is returned when a signature made with a trusted key
	// id does not verify: the manifest was altered after signing, or the
	// signature is corrupt.
	ErrBadSignature = errors.New("manifest signature does not verify")

	// ErrUnknownKey is returned when no signature is by a trusted key.
	ErrUnknownKey = errors.New("manifest is signed by no trusted key")

	// ErrNotNewer is returned for a manifest whose version is not greater
	// than the highest version this device ever accepted: a replay of an
	// old manifest or a downgrade. It is refused even after a rollback.
	ErrNotNewer = errors.New("manifest version is not newer than the highest accepted")

	// ErrUnscoped is returned for an envelope of format 1: its manifest
	// names no fleet, no devices and no validity period, so its signature
	// would replay to any device of any fleet sharing the key. Such
	// manifests are refused; re-sign them (format 2).
	ErrUnscoped = errors.New("manifest is not scoped (envelope format 1): re-sign it with emberctl fleet sign --fleet")

	// ErrOutOfScope is returned for a manifest signed for another fleet,
	// or whose devices list does not name this device.
	ErrOutOfScope = errors.New("manifest is not for this device")

	// ErrExpired is returned for a manifest past its not_after.
	ErrExpired = errors.New("manifest has expired")

	// ErrNotYetValid is returned for a manifest before its not_before.
	ErrNotYetValid = errors.New("manifest is not valid yet")

	// ErrBelowFloor is returned for a manifest, or an operator's rollback,
	// to a version below the floor an accepted manifest's min_version set.
	ErrBelowFloor = errors.New("version is below the minimum version")

	// ErrVersionJump is returned for a manifest whose version is more than
	// fleet.max_version_jump above the highest accepted and that is not
	// signed by two different trusted keys: one key alone must not be able
	// to freeze a device with a huge version.
	ErrVersionJump = errors.New("version jump needs a second signature")

	// ErrKeysNotNewer is returned for a key list whose version is not
	// greater than the key list the device holds (a replay or a
	// rollback of the keys).
	ErrKeysNotNewer = errors.New("key list version is not newer than the one held")

	// ErrInsecureURL is returned for an artifact URL (or a redirect) that
	// is plain http to a host that is not loopback while https is
	// required (fleet.require_https).
	ErrInsecureURL = errors.New("artifact URL is not https")

	// ErrRedirect is returned for a download redirected to another host,
	// or from https to http.
	ErrRedirect = errors.New("redirect to another host refused")

	// ErrLicense is returned when an artifact's license is not in the
	// device's allow-list. The manifest is refused before any download.
	ErrLicense = errors.New("license not allowed on this device")

	// ErrRequirements is returned when the device lacks the memory or the
	// architecture an artifact requires.
	ErrRequirements = errors.New("device does not meet the artifact's requirements")

	// ErrNoSchemaValidator is returned for a manifest whose checks use
	// json_schema on a device that was given no JSON Schema validator.
	ErrNoSchemaValidator = errors.New("no JSON Schema validator configured")
)

// Download and verification failures.
var (
	// ErrNoSpace is returned when the artifacts cannot fit on the disk
	// next to the running version.
	ErrNoSpace = errors.New("not enough free disk space")

	// ErrRemoteNotFound is returned when the server answers 404 or 410.
	ErrRemoteNotFound = errors.New("artifact not found on the server")

	// ErrHTTPStatus is returned for a response status that retrying will
	// not change (4xx other than 408, 425 and 429).
	ErrHTTPStatus = errors.New("server refused the download")

	// ErrSizeMismatch is returned when the server's file is not the size
	// the manifest gives.
	ErrSizeMismatch = errors.New("artifact size differs from the manifest")

	// ErrDigestMismatch is returned when a completely downloaded artifact
	// does not hash to the manifest's sha256.
	ErrDigestMismatch = errors.New("artifact sha256 differs from the manifest")
)

// Update outcomes and operator requests.
var (
	// ErrCheckFailed is returned when a post-update check's expectation
	// is not met; the update is rolled back.
	ErrCheckFailed = errors.New("post-update check failed")

	// ErrCrashLoop is the reason of a rollback after the daemon restarted
	// too often while an update was unconfirmed.
	ErrCrashLoop = errors.New("daemon kept restarting before the update was confirmed")

	// ErrBusy is returned by Rollback while an update is in progress.
	ErrBusy = errors.New("an update is in progress")

	// ErrNotKept is returned by Rollback for a version this device does not
	// keep.
	ErrNotKept = errors.New("version is not kept on this device")
)

// PermanentError marks an error that retrying will not fix (a 404, a size
// or sha256 mismatch, no space). Every other error from a download attempt
// is transient and retried with backoff.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// permanent wraps err as a PermanentError.
func permanent(err error) error { return &PermanentError{Err: err} }

// permanentf formats an error and marks it permanent.
func permanentf(format string, args ...any) error {
	return &PermanentError{Err: fmt.Errorf(format, args...)}
}

// IsPermanent reports whether err, or an error it wraps, is a
// PermanentError.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// errCrashed is returned by the test hook to stop every side effect at
// once, as a power cut would. Production code never sees it.
var errCrashed = errors.New("simulated crash")
