package hw

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fixture returns Options that read only testdata/<board>: every root, the
// library directory, and a statfs stand-in, so no fixture test sees the
// host's /proc, /sys or disks.
func fixture(board, libs string) Options {
	dir := filepath.Join("testdata", board)
	opts := Options{
		ProcRoot: filepath.Join(dir, "proc"),
		SysRoot:  filepath.Join(dir, "sys"),
		EtcRoot:  filepath.Join(dir, "etc"),
		DevRoot:  filepath.Join(dir, "dev"),
		RootDir:  filepath.Join(dir, "root"),
		StateDir: "/var/lib/ember",
		statfs:   fakeStatfs(64*gib, 40*gib),
	}
	if libs != "" {
		opts.LibDir = filepath.Join("testdata", "libs", libs)
	}
	return opts
}

func fakeStatfs(total, free uint64) func(context.Context, string) (uint64, uint64, error) {
	return func(context.Context, string) (uint64, uint64, error) { return total, free, nil }
}

func detect(t *testing.T, opts Options) *Profile {
	t.Helper()
	p, err := Detect(context.Background(), opts)
	if err != nil {
		t.Fatalf("Detect: %v", err)
	}
	return p
}

// boardWant is what one fixture board must yield.
type boardWant struct {
	platform, model, soc, l4t, jetpack, userland string
	arch, modelName                              string
	physical, logical, performance               int
	maxMHz                                       float64
	flagsHave, flagsLack                         []string
	memoryBytes, swapBytes                       uint64
	zram                                         bool
	diskKind, blockDevice                        string
	removableFlash                               bool
	temperatures                                 int
	cuda, tegra                                  bool
	gpuBackends                                  []string

	threads, context, parallel, gpuLayers int
	mmap, mlock                           bool
	cpuVariant                            string
	// warnings holds one substring per expected warning; there must be
	// exactly as many warnings.
	warnings []string
	// reasons holds substrings the named recommendation's reason must hold.
	reasons map[string]string
}

func TestDetectBoards(t *testing.T) {
	t.Parallel()
	orin := fixture("jetson-orin-nano", "linux-arm64-cuda")
	pi5 := fixture("raspberry-pi-5", "linux-arm64")
	pi4 := fixture("raspberry-pi-4", "linux-arm64")
	pi4armhf := fixture("raspberry-pi-4", "linux-arm64")
	pi4armhf.EtcRoot = filepath.Join("testdata", "raspberry-pi-4-32bit", "etc")
	atom := fixture("up-squared-e3940", "linux-x64")
	atomVulkan := fixture("up-squared-e3940", "linux-x64-vulkan")
	xeon := fixture("xeon-silver-4216", "linux-x64")
	xeon.StateDir = "/data/ember"
	rock := fixture("rock-5b", "linux-arm64")
	orinNoCUDA := fixture("jetson-orin-nano", "linux-arm64")

	const orinMem = 7620440 * 1024
	orinWant := boardWant{
		platform: "jetson-orin-nano", model: "NVIDIA Jetson Orin Nano Developer Kit", soc: "tegra234",
		l4t: "36.4.0", jetpack: "6.1", userland: "arm64",
		arch: "aarch64", modelName: "Cortex-A78AE", physical: 6, logical: 6, performance: 6, maxMHz: 1510.4,
		flagsHave: []string{"NEON", "FP16", "DOTPROD"}, flagsLack: []string{"I8MM", "SVE"},
		memoryBytes: orinMem, swapBytes: 3810192 * 1024, zram: true,
		diskKind: KindSDCard, blockDevice: "mmcblk0", removableFlash: true,
		temperatures: 6, cuda: true, tegra: true, gpuBackends: []string{"cuda"},
		threads: 6, context: 4096, parallel: 2, gpuLayers: AllLayers, mmap: false, mlock: false,
		cpuVariant: "armv8.2_2",
		warnings:   []string{"SD card"},
		reasons:    map[string]string{"gpu_layers": "integrated GPU", "mmap": "CUDA buffers", "cpu_variant": "armv8.2_3 (needs SVE)"},
	}
	orinNoCUDAWant := orinWant
	orinNoCUDAWant.gpuBackends = nil
	orinNoCUDAWant.gpuLayers, orinNoCUDAWant.parallel, orinNoCUDAWant.mmap = 0, 1, true
	orinNoCUDAWant.warnings = []string{"SD card", "no GPU backend"}
	orinNoCUDAWant.reasons = map[string]string{"gpu_layers": "no GPU backend library"}

	pi4Want := boardWant{
		platform: "raspberry-pi-4", model: "Raspberry Pi 4 Model B Rev 1.4", soc: "bcm2711", userland: "arm64",
		arch: "aarch64", modelName: "Cortex-A72", physical: 4, logical: 4, performance: 4, maxMHz: 1800,
		flagsHave: []string{"NEON"}, flagsLack: []string{"DOTPROD", "FP16"},
		memoryBytes: 3884172 * 1024, swapBytes: 102396 * 1024,
		diskKind: KindSDCard, blockDevice: "mmcblk0", removableFlash: true, temperatures: 1,
		threads: 4, context: 2048, parallel: 1, gpuLayers: 0, mmap: true, mlock: false,
		cpuVariant: "armv8.0_1",
		warnings:   []string{"no dotprod on Cortex-A72", "SD card"},
		reasons:    map[string]string{"context": "≤ 4 GiB", "cpu_variant": "armv8.0_1"},
	}
	pi4armhfWant := pi4Want
	pi4armhfWant.userland = "armhf"
	pi4armhfWant.warnings = []string{"32-bit OS (armhf userland on aarch64)", "no dotprod", "SD card"}

	atomWant := boardWant{
		platform: "x86_64", model: "AAEON UP-APL01", userland: "amd64",
		arch: "x86_64", modelName: "Intel(R) Atom(TM) Processor E3940 @ 1.60GHz", physical: 4, logical: 4, performance: 4, maxMHz: 1800,
		flagsHave: []string{"SSE3", "SSSE3", "SSE4_1", "SSE4_2"}, flagsLack: []string{"AVX", "AVX2", "FMA"},
		memoryBytes: 3866220 * 1024, swapBytes: 0,
		diskKind: KindEMMC, blockDevice: "mmcblk0", temperatures: 2,
		threads: 4, context: 2048, parallel: 1, gpuLayers: 0, mmap: true, mlock: false,
		cpuVariant: "sse42",
		warnings:   []string{"no AVX2 on Intel(R) Atom(TM) Processor E3940 @ 1.60GHz: llama.cpp runs its sse42 kernels", "no swap with 3.7 GiB RAM"},
		reasons:    map[string]string{"threads": "4 physical cores: one thread per core", "cpu_variant": "sandybridge (needs AVX)"},
	}
	atomVulkanWant := atomWant
	atomVulkanWant.gpuBackends = []string{"vulkan"}
	atomVulkanWant.reasons = map[string]string{"gpu_layers": "only GPU is integrated (Intel GPU 8086:5a85)"}

	tests := []struct {
		name string
		opts Options
		want boardWant
	}{
		{"jetson orin nano 8GB, JetPack 6.1, SD card", orin, orinWant},
		{"jetson orin nano without CUDA backend", orinNoCUDA, orinNoCUDAWant},
		{"raspberry pi 5 8GB on NVMe", pi5, boardWant{
			platform: "raspberry-pi-5", model: "Raspberry Pi 5 Model B Rev 1.0", soc: "bcm2712", userland: "arm64",
			arch: "aarch64", modelName: "Cortex-A76", physical: 4, logical: 4, performance: 4, maxMHz: 2400,
			flagsHave: []string{"NEON", "FP16", "DOTPROD"}, flagsLack: []string{"I8MM", "SVE"},
			memoryBytes: 8245888 * 1024, swapBytes: 204784 * 1024,
			diskKind: KindNVMe, blockDevice: "nvme0n1", temperatures: 1,
			threads: 4, context: 4096, parallel: 1, gpuLayers: 0, mmap: true, mlock: false,
			cpuVariant: "armv8.2_2",
			warnings:   nil,
			reasons:    map[string]string{"context": "≤ 8 GiB", "mlock": "not ample"},
		}},
		{"raspberry pi 4 4GB on SD card", pi4, pi4Want},
		{"raspberry pi 4 with 32-bit userland", pi4armhf, pi4armhfWant},
		{"atom e3940 gateway without AVX2", atom, atomWant},
		{"atom e3940 with vulkan backend", atomVulkan, atomVulkanWant},
		{"xeon silver 4216 server, state on HDD", xeon, boardWant{
			platform: "x86_64", model: "Supermicro SYS-6029P-TRT", userland: "amd64",
			arch: "x86_64", modelName: "Intel(R) Xeon(R) Silver 4216 CPU @ 2.10GHz", physical: 16, logical: 32, performance: 16, maxMHz: 3200,
			flagsHave:   []string{"AVX", "AVX2", "FMA", "F16C", "BMI2", "AVX512F", "AVX512BW", "AVX512VL", "AVX512_VNNI"},
			flagsLack:   []string{"AVX512_VBMI", "AVX512_BF16", "AMX_INT8", "AVX_VNNI"},
			memoryBytes: 65528712 * 1024, swapBytes: 8388604 * 1024,
			diskKind: KindHDD, blockDevice: "sdb", temperatures: 3,
			threads: 16, context: 8192, parallel: 4, gpuLayers: 0, mmap: true, mlock: true,
			cpuVariant: "cascadelake",
			warnings:   nil,
			reasons:    map[string]string{"threads": "32 hardware threads", "mlock": "swap cannot take them"},
		}},
		{"rock 5b rk3588 big.LITTLE", rock, boardWant{
			platform: "arm64", model: "Radxa ROCK 5 Model B", soc: "rk3588", userland: "arm64",
			arch: "aarch64", modelName: "Cortex-A55 + Cortex-A76", physical: 8, logical: 8, performance: 4, maxMHz: 2400,
			flagsHave: []string{"NEON", "FP16", "DOTPROD"}, flagsLack: []string{"SVE"},
			memoryBytes: 16102344 * 1024, swapBytes: 8051172 * 1024, zram: true,
			diskKind: KindNVMe, blockDevice: "nvme0n1", temperatures: 7,
			threads: 4, context: 8192, parallel: 1, gpuLayers: 0, mmap: true, mlock: false,
			cpuVariant: "armv8.2_2",
			warnings:   nil,
			reasons:    map[string]string{"threads": "4 performance cores of 8 physical"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := detect(t, tt.opts)
			checkBoard(t, p, tt.want)
		})
	}
}

func checkBoard(t *testing.T, p *Profile, w boardWant) {
	t.Helper()
	eq := func(field string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", field, got, want)
		}
	}
	eq("platform", p.Platform, w.platform)
	eq("model", p.Model, w.model)
	eq("soc", p.SoC, w.soc)
	eq("l4t", p.L4T, w.l4t)
	eq("jetpack", p.JetPack, w.jetpack)
	eq("userland", p.Userland, w.userland)
	eq("cpu.arch", p.CPU.Arch, w.arch)
	eq("cpu.model_name", p.CPU.ModelName, w.modelName)
	eq("cpu.physical_cores", p.CPU.PhysicalCores, w.physical)
	eq("cpu.logical_cores", p.CPU.LogicalCores, w.logical)
	eq("cpu.performance_cores", p.CPU.PerformanceCores, w.performance)
	eq("cpu.max_frequency_mhz", p.CPU.MaxFrequencyMHz, w.maxMHz)
	for _, f := range w.flagsHave {
		if !slices.Contains(p.CPU.Flags, f) {
			t.Errorf("cpu.flags %v lacks %s", p.CPU.Flags, f)
		}
	}
	for _, f := range w.flagsLack {
		if slices.Contains(p.CPU.Flags, f) {
			t.Errorf("cpu.flags %v has %s", p.CPU.Flags, f)
		}
	}
	eq("memory_bytes", p.MemoryBytes, w.memoryBytes)
	if p.AvailableBytes == 0 || p.AvailableBytes > p.MemoryBytes {
		t.Errorf("available_bytes = %d, want in (0, %d]", p.AvailableBytes, p.MemoryBytes)
	}
	eq("swap_bytes", p.SwapBytes, w.swapBytes)
	eq("zram", p.ZRAM, w.zram)
	if p.Disk == nil {
		t.Fatal("disk = nil")
	}
	eq("disk.kind", p.Disk.Kind, w.diskKind)
	eq("disk.block_device", p.Disk.BlockDevice, w.blockDevice)
	eq("disk.removable_flash", p.Disk.RemovableFlash, w.removableFlash)
	eq("disk.free_bytes", p.Disk.FreeBytes, uint64(40*gib))
	eq("temperatures", len(p.Temperatures), w.temperatures)
	for _, tz := range p.Temperatures {
		if tz.Celsius < 20 || tz.Celsius > 70 || tz.Type == "" || tz.Zone == "" {
			t.Errorf("implausible temperature %+v", tz)
		}
	}
	eq("gpu.cuda", p.GPU.CUDA, w.cuda)
	eq("gpu.tegra", p.GPU.Tegra, w.tegra)
	if !slices.Equal(p.GPU.Backends, w.gpuBackends) {
		t.Errorf("gpu.backends = %v, want %v", p.GPU.Backends, w.gpuBackends)
	}

	r := p.Recommended
	eq("threads", r.Threads.Value, w.threads)
	eq("context", r.Context.Value, w.context)
	eq("parallel", r.Parallel.Value, w.parallel)
	eq("gpu_layers", r.GPULayers.Value, w.gpuLayers)
	eq("mmap", r.MMap.Value, w.mmap)
	eq("mlock", r.MLock.Value, w.mlock)
	eq("cpu_variant", r.CPUVariant.Value, w.cpuVariant)
	reasons := map[string]string{
		"threads": r.Threads.Reason, "context": r.Context.Reason, "parallel": r.Parallel.Reason,
		"gpu_layers": r.GPULayers.Reason, "mmap": r.MMap.Reason, "mlock": r.MLock.Reason,
		"cpu_variant": r.CPUVariant.Reason,
	}
	for name, reason := range reasons {
		if strings.TrimSpace(reason) == "" {
			t.Errorf("recommended.%s has no reason", name)
		}
	}
	for name, sub := range w.reasons {
		if !strings.Contains(reasons[name], sub) {
			t.Errorf("recommended.%s reason %q lacks %q", name, reasons[name], sub)
		}
	}
	if len(r.Warnings) != len(w.warnings) {
		t.Errorf("warnings = %q, want %d matching %q", r.Warnings, len(w.warnings), w.warnings)
	}
	for _, sub := range w.warnings {
		if !slices.ContainsFunc(r.Warnings, func(s string) bool { return strings.Contains(s, sub) }) {
			t.Errorf("no warning contains %q in %q", sub, r.Warnings)
		}
	}
	if len(p.Errors) > 0 {
		t.Errorf("errors = %+v, want none", p.Errors)
	}
}
