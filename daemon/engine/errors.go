package engine

import (
	"errors"
	"fmt"

	"github.com/ember-edge/ember/daemon/inference"
)

// The engine's errors are package inference's, so that callers which do
// no inference can tell them apart without importing the binding.
var (
	ErrQueueFull          = inference.ErrQueueFull
	ErrModelNotLoaded     = inference.ErrModelNotLoaded
	ErrModelLoaded        = inference.ErrModelLoaded
	ErrUnloaded           = inference.ErrUnloaded
	ErrInvalidRequest     = inference.ErrInvalidRequest
	ErrInsufficientMemory = inference.ErrInsufficientMemory
	ErrDecode             = inference.ErrDecode
)

// PromptTooLongError reports a prompt that does not fit the context.
type PromptTooLongError = inference.PromptTooLongError

func invalid(format string, args ...any) error { return inference.Invalid(format, args...) }

// llamaError names a llama.cpp call that failed. yzma reports some
// failures only through a zero handle, with a nil error, so the message
// must not depend on err.
func llamaError(what string, err error) error {
	if err == nil {
		return errors.New(what)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// decodeError is a failed llama_decode or llama_encode: ret is the
// function's status, err what the binding reported (often nil).
func decodeError(ret int32, err error) error {
	reason := fmt.Sprintf("llama_decode returned %d", ret)
	if ret == 1 {
		reason = "no room left in the KV cache"
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrDecode, reason, err)
	}
	return fmt.Errorf("%w: %s", ErrDecode, reason)
}
