package synth

import "errors"

// ErrInvalidSpec is returned by Write for a Spec whose shapes llama.cpp
// cannot run; the error lists every problem.
var ErrInvalidSpec = errors.New("invalid model spec")
