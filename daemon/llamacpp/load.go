package llamacpp

import (
	"fmt"
	"sync"

	"github.com/hybridgroup/yzma/pkg/llama"
)

var (
	mu        sync.Mutex
	loadedDir string
)

// Options tune how the libraries are loaded.
type Options struct {
	// Verbose leaves llama.cpp's own logging on stderr; otherwise it is
	// silenced, since ember reports what matters through its own logs.
	Verbose bool
}

// Load loads the libraries in dir and initialises llama.cpp's backends.
// Calling it again with the same dir is a no-op; with another dir it is an
// error, because the process already holds one set.
func Load(dir string, opts Options) error {
	mu.Lock()
	defer mu.Unlock()
	if loadedDir != "" {
		if loadedDir == dir {
			return nil
		}
		return fmt.Errorf("load llama.cpp from %q: already loaded from %q", dir, loadedDir)
	}
	if missing := Missing(dir); len(missing) > 0 {
		return fmt.Errorf("load llama.cpp from %q: %w (missing %v); install them with `make llama-libs`",
			dir, ErrLibraryNotFound, missing)
	}
	if err := llama.Load(dir); err != nil {
		return fmt.Errorf("load llama.cpp from %q: %w", dir, err)
	}
	if !opts.Verbose {
		llama.LogSet(llama.LogSilent())
	}
	llama.Init()
	if llama.GGMLBackendDeviceCount() == 0 {
		return fmt.Errorf("load llama.cpp from %q: no compute backend loaded "+
			"(no libggml-cpu-*.so variant there runs on this CPU)", dir)
	}
	loadedDir = dir
	return nil
}

// Dir returns the directory the libraries were loaded from, or "" before
// Load succeeded.
func Dir() string {
	mu.Lock()
	defer mu.Unlock()
	return loadedDir
}

// Devices describes the compute devices llama.cpp found, for status output.
func Devices() []string {
	var out []string
	for i := uint64(0); i < llama.GGMLBackendDeviceCount(); i++ {
		dev := llama.GGMLBackendDeviceGet(i)
		out = append(out, fmt.Sprintf("%s (%s)", llama.GGMLBackendDeviceName(dev), llama.GGMLBackendDeviceDescription(dev)))
	}
	return out
}
