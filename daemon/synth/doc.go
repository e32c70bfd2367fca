// Package synth writes small llama-architecture models with random weights
// and a real, if small, vocabulary: the models ember's tests, demo and
// benchmarks run on, since no model can be downloaded where ember is
// built and tested.
//
// The models are real as far as llama.cpp is concerned: GGUF v3 files
// with llama.cpp's tensor names and shapes and every hyperparameter its
// loader needs, a SentencePiece-style vocabulary of about three thousand
// pieces (about a thousand English words, every prefix of each, single
// characters and the 256 byte-fallback tokens) and a ChatML chat template.
// So text tokenizes into whole-word tokens, any text round-trips through
// byte fallback, and chat prompts render as they would for a real model.
// What the models generate is gibberish: use them to test plumbing and to
// measure speed, never quality.
//
// Write is deterministic (the same Spec gives a byte-identical file) and
// atomic. llamacpp.Quantize converts a written model with llama.cpp's own
// quantizer, which needs the libraries loaded (daemon/llamacpp.Load).
package synth
