// Package daemon wires emberd together: it opens the store, detects the
// hardware, starts the engine and the API, loads the configured models and
// runs until its context ends, then shuts everything down in order within
// the configured deadline. The packages below it each do one job; this one
// only connects them.
package daemon
