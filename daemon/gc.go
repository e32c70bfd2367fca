package daemon

import (
	"os"
	"runtime/debug"
)

// Garbage collector settings for emberd, unless GOGC or GOMEMLIMIT say
// otherwise. emberd's Go heap is small (models live in llama.cpp's
// memory and bbolt's mmap, outside it) and its ingest path allocates
// per message, so collecting at every doubling of a small heap costs
// more CPU than the memory saved is worth. On 2 cores durable MQTT
// ingest ran about 10% faster at GOGC 400 than at 100: embedded broker
// 22.3k vs 20.6k msg/s, as a client of mosquitto 17.8k vs 16.0k (compare
// `GOGC=100 make bench` with `make bench`; the benchmarks apply TuneGC as
// emberd does). The soft limit keeps a burst from growing the heap
// without bound on a small board.
const (
	gcPercent     = 400
	gcMemoryLimit = 512 << 20
)

// TuneGC applies emberd's collector settings where the environment does
// not set its own.
func TuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(gcMemoryLimit)
	}
}
