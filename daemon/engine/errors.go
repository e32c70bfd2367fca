package engine

import (
	"errors"
	"fmt"
)

var (
	// ErrQueueFull is returned when a model's request queue is full.
	ErrQueueFull = errors.New("request queue is full")

	// ErrModelNotLoaded is returned for a model name that is not loaded.
	ErrModelNotLoaded = errors.New("model is not loaded")

	// ErrModelLoaded is returned when loading a name that is already loaded.
	ErrModelLoaded = errors.New("model is already loaded")

	// ErrUnloaded is returned to requests whose model was unloaded while
	// they waited or ran.
	ErrUnloaded = errors.New("model was unloaded")

	// ErrInvalidRequest wraps every problem with a request's content or
	// parameters: the caller can fix it and retry.
	ErrInvalidRequest = errors.New("invalid request")

	// ErrInsufficientMemory is returned when a model would not fit in the
	// memory available.
	ErrInsufficientMemory = errors.New("not enough memory")

	// ErrDecode is returned when llama.cpp fails to evaluate a batch.
	ErrDecode = errors.New("llama.cpp decode failed")
)

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

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidRequest, fmt.Sprintf(format, args...))
}
