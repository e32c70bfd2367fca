// Package store is emberd's durable state: one bbolt database in the state
// directory. layout.go documents every bucket; the other files each own the
// records of one bucket. Writes are committed (fsynced) before they return,
// so a caller that has seen nil from a write may acknowledge it.
package store
