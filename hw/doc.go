// Package hw detects the hardware emberd runs on and derives the inference
// defaults that suit it.
//
// Detect reads one source at a time — board identity, CPU, memory, the disk
// holding the state directory, thermal zones, GPU, the installed llama.cpp
// libraries — each through a root path (Options.ProcRoot, SysRoot, EtcRoot,
// DevRoot, RootDir) and never through a hard-coded /proc or /sys, so the
// same code reads a container's bind-mounted host tree or a fixture tree in
// testdata/. gopsutil is handed the same roots through its context
// environment map, so its readers follow them too.
//
// A source that does not exist on this machine (no device tree on x86, no
// thermal zones in a VM, no GPU) is reported as ErrNotPresent, recorded in
// Profile.Missing and logged at debug level; a source that exists but cannot
// be read or parsed is recorded in Profile.Errors. Neither stops the other
// sources: Detect fails only when its roots are unusable or its context ends.
//
// The Profile is a public contract: `emberd hw -o json` prints it as is, so
// its JSON field names change only with a migration note. Recommended holds
// the derived defaults (threads, context, parallel sequences, GPU layers,
// mmap, mlock, the ggml CPU variant llama.cpp will load), each with the
// reason it was chosen, plus warnings an operator should act on.
package hw
