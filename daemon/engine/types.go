package engine

import "github.com/ember-edge/ember/daemon/inference"

// The request and result types live in package inference (no llama.cpp
// import); these names keep the engine's API readable on its own.
type (
	Segment      = inference.Segment
	Message      = inference.Message
	Request      = inference.Request
	Result       = inference.Result
	Sampling     = inference.Sampling
	FinishReason = inference.FinishReason
)

// The reasons generation ends.
const (
	FinishStop    = inference.FinishStop
	FinishLength  = inference.FinishLength
	FinishContext = inference.FinishContext
)

// DefaultSampling is llama.cpp's own sampling defaults.
func DefaultSampling() Sampling { return inference.DefaultSampling() }
