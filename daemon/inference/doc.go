// Package inference holds the types that describe an inference request
// and its outcome — prompt segments, chat messages, sampling settings,
// results and the errors a model can return — without the llama.cpp
// binding.
//
// Packages that prepare, queue or route work (pipeline, jobs, api) speak
// these types; only package engine turns them into llama.cpp calls. That
// keeps yzma and libffi out of everything that does no inference, so those
// packages build and test on a machine without the llama.cpp libraries.
package inference
