package inference

import (
	"errors"
	"fmt"
)

// kind is a sentinel error that knows whether the failure it names
// passes by itself (a full queue, a model still loading) or needs a
// change before trying again.
type kind struct {
	msg       string
	transient bool
}

func (k *kind) Error() string   { return k.msg }
func (k *kind) Transient() bool { return k.transient }

var (
	// ErrQueueFull is returned when a model's request queue is full.
	ErrQueueFull error = &kind{"request queue is full", true}

	// ErrModelNotLoaded is returned for a model name that is not loaded.
	ErrModelNotLoaded error = &kind{"model is not loaded", true}

	// ErrModelLoaded is returned when loading a name that is already loaded.
	ErrModelLoaded error = &kind{"model is already loaded", false}

	// ErrUnloaded is returned to requests whose model was unloaded while
	// they waited or ran.
	ErrUnloaded error = &kind{"model was unloaded", true}

	// ErrInvalidRequest wraps every problem with a request's content or
	// parameters: the caller can fix it and retry.
	ErrInvalidRequest error = &kind{"invalid request", false}

	// ErrInsufficientMemory is returned when a model would not fit in the
	// memory available.
	ErrInsufficientMemory error = &kind{"not enough memory", false}

	// ErrDecode is returned when llama.cpp fails to evaluate a batch; the
	// next batch may well succeed (the KV cache was full, say).
	ErrDecode error = &kind{"llama.cpp decode failed", true}
)

// Invalid returns an error wrapping ErrInvalidRequest.
func Invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidRequest, fmt.Sprintf(format, args...))
}

// PromptTooLongError reports a prompt that does not fit the context.
type PromptTooLongError struct {
	Tokens  int
	Context int
}

func (e *PromptTooLongError) Error() string {
	return fmt.Sprintf("prompt is %d tokens but the context holds %d: shorten the prompt or load the model with a larger context", e.Tokens, e.Context)
}

// Is makes errors.Is(err, ErrInvalidRequest) true for it.
func (e *PromptTooLongError) Is(target error) bool { return target == ErrInvalidRequest }

// transientError marks a wrapped error as passing by itself.
type transientError struct{ err error }

func (e transientError) Error() string   { return e.err.Error() }
func (e transientError) Unwrap() error   { return e.err }
func (e transientError) Transient() bool { return true }

// Temporary marks err as transient: trying again later, unchanged, may
// succeed. It returns nil for nil.
func Temporary(err error) error {
	if err == nil {
		return nil
	}
	return transientError{err}
}

// IsTransient reports whether err, or the first error in its chain that
// says either way, is transient. Errors that do not say are not: a
// failure nobody classified is not retried forever.
func IsTransient(err error) bool {
	var t interface{ Transient() bool }
	return errors.As(err, &t) && t.Transient()
}
