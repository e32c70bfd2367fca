package uplink

import "errors"

var (
	// ErrOffline is returned by Link.Publish while there is no connection
	// to the broker; publish again when Notify reports the link up.
	ErrOffline = errors.New("uplink is offline")

	// ErrRunning is returned by Run when the uplink is already running.
	ErrRunning = errors.New("uplink is already running")

	// ErrAckTimeout ends a connection on which a batch waited longer than
	// Options.AckTimeout for its PUBACK: a half-open link that keepalives
	// have not caught yet.
	ErrAckTimeout = errors.New("no PUBACK in time")

	// ErrMalformed is returned by DecodeEnvelope for a payload that is not
	// a well-formed envelope: not gzip, not JSON, a missing or bad field.
	ErrMalformed = errors.New("malformed uplink envelope")

	// ErrUnsupportedFormat is returned by DecodeEnvelope for an envelope
	// of a format version this code does not read.
	ErrUnsupportedFormat = errors.New("unsupported uplink envelope format")

	// ErrTooLarge is returned by DecodeEnvelope when the payload
	// decompresses to more than the limit it was given.
	ErrTooLarge = errors.New("uplink envelope too large")

	// ErrHashMismatch is returned by DecodeEnvelope when a record's data
	// does not hash to its sha256.
	ErrHashMismatch = errors.New("uplink record sha256 mismatch")
)
