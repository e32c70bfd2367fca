// Package bench holds ember's benchmarks (`make bench`). Each one runs the
// path it measures side by side with a baseline on the same machine, in
// the same process where it can, alternating rounds so that drift hits
// both alike, and reports the ratio: machines are noisy, ratios less so.
// Speed is never asserted in tests; it is measured here.
package bench
