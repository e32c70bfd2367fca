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

	// ErrExists is returned when a record with the same key or name is
	// already stored (a live token of that name).
	ErrExists = errors.New("already exists")

	// ErrClosed is returned for writes after Close began.
	ErrClosed = errors.New("store is closed")

	// ErrDiskFull is returned when the file system has no room for a
	// write. Nothing of the write is kept and the database stays sound:
	// it is backpressure, not corruption.
	ErrDiskFull = errors.New("disk full")

	// ErrFull is returned when the outbox is over its configured limits
	// and the writer's overflow policy is to reject.
	ErrFull = errors.New("store is over its limits")

	// ErrBacklogFull is returned when a pipeline's queue of jobs is at its
	// bound and its overflow policy is to reject.
	ErrBacklogFull = errors.New("pipeline backlog is full")
)

// ErrWrongState is returned when a job is not in the state a transition
// starts from (cancelling a finished job, say).
var ErrWrongState = errors.New("job is in the wrong state")
