// Package gguf reads, validates and writes GGUF model files.
//
// ember checks every model in Go before llama.cpp sees it: llama.cpp trusts
// much of what a file says, and a malformed file can abort the whole daemon
// (GGML_ASSERT), or make it read past the end of an array, instead of
// returning an error. Read therefore rejects everything llama.cpp's own
// gguf.cpp rejects, and more: it bounds every count and length by the bytes
// left in the file before allocating anything, so a hostile file of N bytes
// costs at most a small multiple of N in memory and never panics.
//
// A GGUF file is a header (magic "GGUF", version, tensor and key/value
// counts), the key/value metadata, the tensor table (name, shape, ggml type
// and offset of each tensor), then the tensor data, aligned to
// general.alignment. Read parses the first three without touching the tensor
// data, so a large model's header parses in milliseconds.
//
// Read (and Open) also checks the model metadata llama.cpp trusts:
// a supported general.architecture, tokenizer arrays that agree, special
// token ids inside the vocabulary, and the hyperparameters llama.cpp
// asserts on rather than checks (a block count of 0, inconsistent expert
// counts, an unknown RoPE scaling type all abort the process). Parse skips
// those checks, for inspecting files llama.cpp cannot run; Validate runs
// them on a parsed file.
//
// Errors wrap one of the sentinels in errors.go and name what is wrong and
// where, e.g.
//
//	gguf: tensor 12 "blk.0.attn_q.weight": data [1024, 5120) extends past end of file (size 4096): file truncated
//
// Write produces GGUF v3 files, streaming tensor data from callbacks so that
// a large model is never held in memory.
package gguf
