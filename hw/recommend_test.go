package hw

import (
	"strings"
	"testing"
)

func TestRecommendContext(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mem  uint64
		want int
	}{
		{0, 1024},
		{512 << 20, 1024},
		{2 * gib, 1024},
		{2*gib + 1, 2048},
		{4 * gib, 2048},
		{7803330560, 4096}, // an "8 GB" Jetson: MemTotal is under 8 GiB
		{8 * gib, 4096},
		{8*gib + 1, 8192},
		{256 * gib, 8192},
	}
	for _, tt := range tests {
		r := recommendContext(&Profile{MemoryBytes: tt.mem})
		if r.Value != tt.want || r.Reason == "" {
			t.Errorf("context for %d bytes = %d (%q), want %d", tt.mem, r.Value, r.Reason, tt.want)
		}
	}
}

func TestRecommendThreads(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		cpu    CPU
		want   int
		reason string
	}{
		{"2-core box", CPU{PhysicalCores: 2, LogicalCores: 2, PerformanceCores: 2}, 2, "~400x slower"},
		{"2 cores with hyper-threading", CPU{PhysicalCores: 2, LogicalCores: 4, PerformanceCores: 2}, 2, "4 hardware threads"},
		{"big.LITTLE", CPU{PhysicalCores: 8, LogicalCores: 8, PerformanceCores: 4, ModelName: "Cortex-A55 + Cortex-A76"}, 4, "4 performance cores of 8"},
		{"performance unknown", CPU{PhysicalCores: 4, LogicalCores: 4}, 4, "4 physical cores"},
		{"only logical known", CPU{LogicalCores: 3}, 3, "3 physical cores"},
		{"nothing known", CPU{}, 1, "unknown"},
		{"never above online CPUs", CPU{PhysicalCores: 6, LogicalCores: 4, PerformanceCores: 6}, 4, ""},
	}
	for _, tt := range tests {
		r := recommendThreads(&Profile{CPU: tt.cpu})
		if r.Value != tt.want || r.Reason == "" || !strings.Contains(r.Reason, tt.reason) {
			t.Errorf("%s: threads = %d (%q), want %d with %q", tt.name, r.Value, r.Reason, tt.want, tt.reason)
		}
	}
}

// TestCPUVariant checks ember picks the library ggml's loader would: the
// highest-scoring variant whose every feature the CPU has.
func TestCPUVariant(t *testing.T) {
	t.Parallel()
	x86 := []string{"x64", "sse42", "sandybridge", "ivybridge", "piledriver", "haswell", "skylakex", "cannonlake",
		"cascadelake", "icelake", "cooperlake", "zen4", "alderlake", "sapphirerapids"}
	arm := []string{"armv8.0_1", "armv8.2_1", "armv8.2_2", "armv8.2_3", "armv8.6_1", "armv8.6_2", "armv9.2_1", "armv9.2_2"}
	avx512 := []string{"SSE4_2", "AVX", "F16C", "FMA", "BMI2", "AVX2", "AVX512F", "AVX512CD", "AVX512DQ", "AVX512BW", "AVX512VL"}
	tests := []struct {
		name     string
		arch     string
		flags    []string
		variants []string
		want     string
	}{
		{"core 2 without sse4.2", "x86_64", []string{"SSE3", "SSSE3"}, x86, "x64"},
		{"atom", "x86_64", []string{"SSE3", "SSSE3", "SSE4_1", "SSE4_2"}, x86, "sse42"},
		{"sandy bridge", "x86_64", []string{"SSE4_2", "AVX"}, x86, "sandybridge"},
		{"AMD piledriver", "x86_64", []string{"SSE4_2", "AVX", "F16C", "FMA"}, x86, "piledriver"},
		{"haswell", "x86_64", []string{"SSE4_2", "AVX", "F16C", "FMA", "BMI2", "AVX2"}, x86, "haswell"},
		{"alder lake", "x86_64", []string{"SSE4_2", "AVX", "F16C", "FMA", "BMI2", "AVX2", "AVX_VNNI"}, x86, "alderlake"},
		{"skylake-x", "x86_64", avx512, x86, "skylakex"},
		{"avx512f alone is not enough", "x86_64", []string{"SSE4_2", "AVX", "F16C", "FMA", "BMI2", "AVX2", "AVX512F"}, x86, "haswell"},
		{"ice lake", "x86_64", append(avx512[:len(avx512):len(avx512)], "AVX512_VBMI", "AVX512_VNNI"), x86, "icelake"},
		{"zen 4", "x86_64", append(avx512[:len(avx512):len(avx512)], "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16"), x86, "zen4"},
		{"sapphire rapids", "x86_64", append(avx512[:len(avx512):len(avx512)], "AVX_VNNI", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16", "AMX_TILE", "AMX_INT8"), x86, "sapphirerapids"},
		{"haswell, only old variants installed", "x86_64", []string{"SSE4_2", "AVX", "F16C", "FMA", "BMI2", "AVX2"}, []string{"x64", "sse42"}, "sse42"},
		{"cortex-a72", "aarch64", []string{"NEON"}, arm, "armv8.0_1"},
		{"cortex-a76", "aarch64", []string{"NEON", "FP16", "DOTPROD"}, arm, "armv8.2_2"},
		{"neoverse v1", "aarch64", []string{"NEON", "FP16", "DOTPROD", "I8MM", "BF16", "SVE"}, arm, "armv8.6_1"},
		{"neoverse n2", "aarch64", []string{"NEON", "FP16", "DOTPROD", "I8MM", "BF16", "SVE", "SVE2"}, arm, "armv8.6_2"},
		{"x86 libraries on arm", "aarch64", []string{"NEON"}, x86, ""},
		{"single build", "aarch64", []string{"NEON"}, []string{GenericCPUVariant}, GenericCPUVariant},
		{"unknown variant only", "aarch64", []string{"NEON"}, []string{"android_armv8.0_1"}, ""},
		{"nothing installed", "x86_64", []string{"AVX2"}, nil, ""},
	}
	for _, tt := range tests {
		r := recommendCPUVariant(&Profile{CPU: CPU{Arch: tt.arch, Flags: tt.flags, GGMLVariants: tt.variants}})
		if r.Value != tt.want || r.Reason == "" {
			t.Errorf("%s: cpu_variant = %q (%s), want %q", tt.name, r.Value, r.Reason, tt.want)
		}
	}
}

func TestRecommendGPULayers(t *testing.T) {
	t.Parallel()
	rtx := GPUDevice{Name: "NVIDIA GPU 10de:2704", Vendor: "nvidia", PCI: "0000:01:00.0"}
	amd := GPUDevice{Name: "AMD GPU 1002:73bf", Vendor: "amd", PCI: "0000:03:00.0"}
	tests := []struct {
		name    string
		gpu     GPU
		want    int
		reason  string
		warning string
	}{
		{"discrete NVIDIA with CUDA", GPU{CUDA: true, Devices: []GPUDevice{rtx}, CUDALibrary: "/usr/lib/x86_64-linux-gnu/libcuda.so.1", Backends: []string{"cuda"}},
			AllLayers, "lower it if the model does not fit in VRAM", ""},
		{"NVIDIA without libcuda", GPU{Devices: []GPUDevice{rtx}, DeviceNodes: []string{"/dev/nvidia0"}, Backends: []string{"cuda"}},
			0, "no libcuda", "driver's libcuda is missing"},
		{"NVIDIA, no backend installed", GPU{CUDA: true, Devices: []GPUDevice{rtx}, CUDALibrary: "/usr/lib/libcuda.so.1"},
			0, "no GPU backend library", "install a CUDA build"},
		{"AMD with Vulkan", GPU{Devices: []GPUDevice{amd}, VulkanICDs: []string{"radeon_icd.x86_64.json"}, Backends: []string{"vulkan"}},
			AllLayers, "radeon_icd.x86_64.json", ""},
		{"Vulkan backend, no ICD", GPU{Devices: []GPUDevice{amd}, Backends: []string{"vulkan"}},
			0, "no Vulkan driver", ""},
		{"CUDA backend, no GPU", GPU{Backends: []string{"cuda"}},
			0, "no GPU it can drive", ""},
		{"nothing", GPU{}, 0, "runs on the CPU", ""},
	}
	for _, tt := range tests {
		r, warnings := recommendGPULayers(&Profile{GPU: tt.gpu})
		if r.Value != tt.want || !strings.Contains(r.Reason, tt.reason) {
			t.Errorf("%s: gpu_layers = %d (%q), want %d with %q", tt.name, r.Value, r.Reason, tt.want, tt.reason)
		}
		got := strings.Join(warnings, "\n")
		if (tt.warning == "") != (got == "") || !strings.Contains(got, tt.warning) {
			t.Errorf("%s: warnings %q, want %q", tt.name, got, tt.warning)
		}
	}
}

func TestRecommendMemoryDependent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name            string
		p               Profile
		parallel        int
		mmap, mlock     bool
		warningContains string
	}{
		{"small CPU box", Profile{MemoryBytes: 4 * gib, CPU: CPU{PerformanceCores: 4}}, 1, true, false, ""},
		{"8 cores, 16 GiB", Profile{MemoryBytes: 16 * gib, SwapBytes: gib, CPU: CPU{PerformanceCores: 8}}, 2, true, true, ""},
		{"big server", Profile{MemoryBytes: 128 * gib, CPU: CPU{PerformanceCores: 32}}, 4, true, true, ""},
		{"JetPack 4 Nano", Profile{MemoryBytes: 4 * gib, SwapBytes: 2 * gib, L4T: "32.7.1", CPU: CPU{PerformanceCores: 4}}, 1, true, false, "CUDA 10.2"},
	}
	for _, tt := range tests {
		r := Recommend(&tt.p)
		if r.Parallel.Value != tt.parallel || r.MMap.Value != tt.mmap || r.MLock.Value != tt.mlock {
			t.Errorf("%s: parallel %d mmap %v mlock %v; want %d %v %v", tt.name, r.Parallel.Value, r.MMap.Value, r.MLock.Value, tt.parallel, tt.mmap, tt.mlock)
		}
		if tt.warningContains != "" && !strings.Contains(strings.Join(r.Warnings, "\n"), tt.warningContains) {
			t.Errorf("%s: warnings %q lack %q", tt.name, r.Warnings, tt.warningContains)
		}
	}
}
