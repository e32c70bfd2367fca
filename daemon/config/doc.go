// Package config loads, defaults and validates emberd's YAML configuration.
//
// Loading is strict: an unknown key, a value of the wrong type and a value
// that fails validation are all errors that name the key and its line, and
// Load reports every problem at once rather than the first. Relative paths
// are resolved against the directory of the config file. Every key is
// documented in docs/config.md.
package config
