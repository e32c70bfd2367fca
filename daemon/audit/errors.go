package audit

import "errors"

var (
	// ErrMalformed is returned by DecodeEntry and DecodeCheckpoint for
	// bytes that are not an entry or a checkpoint.
	ErrMalformed = errors.New("malformed audit data")

	// ErrBadKey is returned when the device key file cannot be read as
	// an ed25519 private key. emberd refuses to start rather than make a
	// new key over it, which would orphan every checkpoint.
	ErrBadKey = errors.New("audit key is unreadable")
)
