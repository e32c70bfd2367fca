package store

import "errors"

var (
	// ErrLocked is returned by Open when another process holds the
	// database, usually a second emberd on the same state dir.
	ErrLocked = errors.New("database is locked by another process")

	// ErrNewerSchema is returned by Open for a database written by a newer
	// emberd; downgrading across layouts is refused rather than guessed.
	ErrNewerSchema = errors.New("database was written by a newer emberd")

	// ErrNotFound is returned when a record does not exist.
	ErrNotFound = errors.New("not found")
)
