#!/usr/bin/env bash
# Runs one fuzz target for a bounded time: scripts/fuzz.sh PKG TARGET TIME.
#
# Go's fuzz coordinator now and then ends a clean run with "context
# deadline exceeded": a worker was slow to stop when -fuzztime ran out (a
# toolchain flake: no input failed, none is saved to testdata). That case
# alone is run again (twice at most); a real failure (a failing input)
# fails at once.
set -uo pipefail
pkg=$1 target=$2 time=$3
go=${GO:-go}
for try in 1 2 3; do
	out=$("$go" test -run '^$' -fuzz "^${target}\$" -fuzztime "$time" -fuzzminimizetime 2s "$pkg" 2>&1)
	rc=$?
	printf '%s\n' "$out"
	[ "$rc" -eq 0 ] && exit 0
	if [ "$try" -lt 3 ] && grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input' <<<"$out"; then
		echo "fuzz: $target: the coordinator timed out stopping its workers (no failing input); running it again" >&2
		continue
	fi
	exit "$rc"
done
