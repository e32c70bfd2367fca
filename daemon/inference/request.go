package inference

import (
	"context"
	"time"
)

// Segment is a part of a prompt. Template text may contain special-token
// text (like "<|im_start|>") that becomes the special token; Data segments
// never do, so that a value from a message or a sensor cannot forge the
// prompt's structure.
type Segment struct {
	Text string `json:"text"`
	Data bool   `json:"data,omitempty"`
}

// Message is one turn of a chat.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Request is a generation request.
type Request struct {
	// Prompt is raw prompt text; special-token text in it is parsed, as
	// llama.cpp's own tools do. Segments, when set, are used instead.
	Prompt   string
	Segments []Segment
	// MaxTokens caps generated tokens; 0 takes the engine's default.
	MaxTokens int
	Sampling  Sampling
	// Stop strings end generation; the matched string is not emitted.
	Stop []string
	// Grammar is a GBNF grammar constraining the output.
	Grammar string
}

// FinishReason says why generation ended.
type FinishReason int

// The reasons generation ends.
const (
	FinishStop FinishReason = iota + 1
	FinishLength
	FinishContext
)

func (r FinishReason) String() string {
	switch r {
	case FinishStop:
		return "stop"
	case FinishLength:
		return "length"
	case FinishContext:
		return "context"
	}
	return "unknown"
}

// Result summarises a finished generation.
type Result struct {
	FinishReason     FinishReason
	Stop             string
	PromptTokens     int
	CompletionTokens int
	TimeToFirstToken time.Duration
	Duration         time.Duration
	// Prompt is the rendered chat prompt (Chat only).
	Prompt string
}

// TokensPerSecond is the generation rate after the first token.
func (r Result) TokensPerSecond() float64 {
	gen := r.Duration - r.TimeToFirstToken
	if r.CompletionTokens < 2 || gen <= 0 {
		return 0
	}
	return float64(r.CompletionTokens-1) / gen.Seconds()
}

// Generator is a loaded model, as callers that queue or route work see
// it. emit runs on the caller's goroutine with each piece of text;
// cancelling ctx stops decoding within one token.
type Generator interface {
	Name() string
	Generate(ctx context.Context, req Request, emit func(text string) error) (Result, error)
	Chat(ctx context.Context, msgs []Message, req Request, emit func(text string) error) (Result, error)
}
