// Package models is the model registry: the models named in the config and
// those imported into the state dir's model store, with their sha256,
// license and provenance. It knows files, not llama.cpp: loading is the
// engine's job.
package models
