// Package llamacpp finds the llama.cpp shared libraries on disk and loads
// them, once per process, through yzma.
//
// The libraries are process-global state: a process loads one set, from one
// directory, and every engine in it shares that set. Callers resolve the
// directory with Resolve and then call Load; both return errors that name
// every path tried and how to install the libraries.
package llamacpp
