// Package engine runs GGUF models through llama.cpp (via yzma).
//
// An Engine holds the loaded models. Each Model has one scheduler goroutine
// that owns its llama.cpp contexts, which are not thread-safe: requests
// reach it through a bounded queue and it decodes them in steps, each step
// one llama_decode over a batch that holds a token (or a chunk of prompt)
// for every active sequence. With engine.parallel = 1 that is one request
// at a time; larger values batch several sequences per step (continuous
// batching) with no other change.
//
// Everything that can be checked in Go is checked before llama.cpp sees it:
// files go through package gguf, prompts are checked for size, NUL bytes
// and context length, and parameters for range. llama.cpp may abort the
// process on malformed input; the daemon must not.
package engine
