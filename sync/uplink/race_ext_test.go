//go:build race

package uplink_test

// raceEnabled scales the heavier tests down under the race detector,
// which slows this code ten- to twentyfold: the same assertions over
// fewer records.
const raceEnabled = true
