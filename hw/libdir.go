package hw

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
)

// GenericCPUVariant names a plain libggml-cpu.so: one CPU backend built
// without per-CPU variants.
const GenericCPUVariant = "generic"

var ggmlLibRE = regexp.MustCompile(`^libggml-([a-z0-9_.-]+?)\.so(\.[0-9]+)*$`)

// gpuBackendLibs are the llama.cpp GPU backends, by library name suffix.
var gpuBackendLibs = []string{"cuda", "vulkan", "hip", "sycl", "opencl"}

// collectLibDir lists the ggml backend libraries in the llama.cpp library
// directory: the CPU variants ggml's loader chooses among, and GPU backends.
func collectLibDir(_ context.Context, e *env, p *Profile) error {
	if e.libDir == "" {
		return notPresent("llama.cpp library directory (none given)")
	}
	entries, err := os.ReadDir(e.libDir)
	if err != nil {
		return fileErr(e.libDir, err)
	}
	for _, ent := range entries {
		m := ggmlLibRE.FindStringSubmatch(ent.Name())
		if m == nil {
			continue
		}
		switch name := m[1]; {
		case name == "cpu":
			p.CPU.GGMLVariants = appendNew(p.CPU.GGMLVariants, GenericCPUVariant)
		case len(name) > 4 && name[:4] == "cpu-":
			p.CPU.GGMLVariants = appendNew(p.CPU.GGMLVariants, name[4:])
		case slices.Contains(gpuBackendLibs, name):
			p.GPU.Backends = appendNew(p.GPU.Backends, name)
		}
	}
	slices.Sort(p.CPU.GGMLVariants)
	slices.Sort(p.GPU.Backends)
	if len(p.CPU.GGMLVariants) == 0 {
		return fmt.Errorf("%s holds no libggml-cpu*.so: llama.cpp cannot run without a CPU backend", e.libDir)
	}
	return nil
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
