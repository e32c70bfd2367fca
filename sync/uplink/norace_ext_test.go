//go:build !race

package uplink_test

const raceEnabled = false
