package pipeline

import (
	"errors"
	"fmt"
)

// ErrInput is wrapped by every InputError.
var ErrInput = errors.New("message cannot become a job")

// ErrQuarantined is the cause of an InputError for a message the guard
// quarantined: its data reads like instructions to the model, and the
// pipeline's guard is quarantine.
var ErrQuarantined = errors.New("quarantined by the guard")

// InputError says why a message was refused: it becomes a dead letter
// with this reason and is reported on the pipeline's error topic.
type InputError struct {
	Pipeline string
	Reason   string
	Err      error
}

func (e *InputError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("pipeline %q: %s: %v", e.Pipeline, e.Reason, e.Err)
	}
	return fmt.Sprintf("pipeline %q: %s", e.Pipeline, e.Reason)
}

func (e *InputError) Unwrap() []error { return []error{ErrInput, e.Err} }

func inputErr(p, reason string, err error) error {
	return &InputError{Pipeline: p, Reason: reason, Err: err}
}
