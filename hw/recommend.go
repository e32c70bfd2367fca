package hw

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ember-edge/ember/internal/bytesize"
)

// Recommendation is a derived default and why it was chosen. The reason is
// never empty: an operator overriding a value should know what they trade.
type Recommendation[T any] struct {
	Value  T      `json:"value"`
	Reason string `json:"reason"`
}

// Recommendations are the inference defaults Detect derives from a Profile.
type Recommendations struct {
	// Threads is the llama.cpp thread count: one per physical performance
	// core.
	Threads Recommendation[int] `json:"threads"`
	// Context is the per-sequence context window in tokens, bounded by RAM;
	// the engine also caps it at the model's trained context length.
	Context Recommendation[int] `json:"context"`
	// Parallel is the number of sequences decoded together in one context;
	// each needs its own Context-sized share of KV cache.
	Parallel Recommendation[int] `json:"parallel"`
	// GPULayers is how many layers to offload: 0, or AllLayers.
	GPULayers Recommendation[int] `json:"gpu_layers"`
	// MMap says whether to memory-map the model file.
	MMap Recommendation[bool] `json:"mmap"`
	// MLock says whether to lock the weights in RAM.
	MLock Recommendation[bool] `json:"mlock"`
	// CPUVariant is the libggml-cpu-<variant>.so ggml's loader will pick
	// from the library directory; empty when none fits or none is installed.
	CPUVariant Recommendation[string] `json:"cpu_variant"`
	// Warnings are conditions an operator should act on, most fundamental
	// first.
	Warnings []string `json:"warnings"`
}

// AllLayers is the gpu_layers value that offloads every layer: llama.cpp
// clamps it to the model's layer count.
const AllLayers = 999

const gib = 1 << 30

// Context tiers: the largest context whose KV cache, beside the weights of
// a model that fits the same RAM, leaves the OS room to breathe.
var contextTiers = []struct {
	maxBytes uint64
	tokens   int
}{
	{2 * gib, 1024},
	{4 * gib, 2048},
	{8 * gib, 4096},
}

// maxContext is the context for machines above every tier.
const maxContext = 8192

// hotCelsius is where ember warns: Raspberry Pi firmware starts throttling
// at 80-85 °C, and sustained inference keeps a SoC at its hottest.
const hotCelsius = 80.0

// Recommend derives the defaults from a profile. It reads only the profile,
// so callers may adjust a profile (say, after installing a GPU backend) and
// derive again.
func Recommend(p *Profile) Recommendations {
	var r Recommendations
	var gpuWarnings []string
	r.Threads = recommendThreads(p)
	r.Context = recommendContext(p)
	r.GPULayers, gpuWarnings = recommendGPULayers(p)
	offloaded := r.GPULayers.Value > 0
	r.Parallel = recommendParallel(p, offloaded)
	r.MMap = recommendMMap(p, offloaded)
	r.MLock = recommendMLock(p, offloaded)
	r.CPUVariant = recommendCPUVariant(p)
	r.Warnings = append(warnings(p, r), gpuWarnings...)
	r.Warnings = append(r.Warnings, thermalWarnings(p)...)
	if r.Warnings == nil {
		r.Warnings = []string{}
	}
	return r
}

func recommendThreads(p *Profile) Recommendation[int] {
	c := p.CPU
	n := c.PerformanceCores
	if n == 0 {
		n = c.PhysicalCores
	}
	if n == 0 {
		n = c.LogicalCores
	}
	if n == 0 {
		return Recommendation[int]{1, "CPU count unknown (cpuinfo and sysfs unreadable): 1 thread is the only safe choice; set threads to the number of physical cores"}
	}
	if c.LogicalCores > 0 && n > c.LogicalCores {
		n = c.LogicalCores
	}
	const never = "; never more threads than cores: oversubscribed, llama.cpp threads spin waiting for each other (its default of 4 threads on a 2-core box was measured ~400x slower)"
	var why string
	switch {
	case c.PerformanceCores > 0 && c.PhysicalCores > c.PerformanceCores:
		why = fmt.Sprintf("%d performance cores of %d physical (%s): llama.cpp splits each matrix evenly across its threads and waits for the slowest, so a thread on an efficiency core slows every token; one thread per performance core",
			n, c.PhysicalCores, c.ModelName)
	case c.LogicalCores > c.PhysicalCores && c.PhysicalCores > 0:
		why = fmt.Sprintf("%d physical cores (%d hardware threads): hyper-threads share one core's vector units, so one thread per physical core is fastest", n, c.LogicalCores)
	default:
		why = fmt.Sprintf("%d physical cores: one thread per core", n)
	}
	return Recommendation[int]{n, why + never}
}

func recommendContext(p *Profile) Recommendation[int] {
	mem := p.MemoryBytes
	if mem == 0 {
		return Recommendation[int]{contextTiers[0].tokens, "RAM size unknown (meminfo unreadable): the smallest context is the one that cannot exhaust memory"}
	}
	const why = "the KV cache grows linearly with context and must fit beside the weights; the engine also caps it at the model's trained context length"
	for _, t := range contextTiers {
		if mem <= t.maxBytes {
			return Recommendation[int]{t.tokens, fmt.Sprintf("%s RAM (≤ %d GiB): %s", bytesize.Size(mem), t.maxBytes/gib, why)}
		}
	}
	return Recommendation[int]{maxContext, fmt.Sprintf("%s RAM (> %d GiB): %s", bytesize.Size(mem), contextTiers[len(contextTiers)-1].maxBytes/gib, why)}
}

func recommendParallel(p *Profile, offloaded bool) Recommendation[int] {
	mem := p.MemoryBytes
	cores := max(p.CPU.PerformanceCores, 1)
	const kv = "each sequence needs its own context's worth of KV cache"
	if offloaded {
		switch {
		case mem <= 4*gib:
			return Recommendation[int]{1, fmt.Sprintf("GPU offload with %s RAM: %s and there is no room for a second", bytesize.Size(mem), kv)}
		case mem <= 8*gib:
			return Recommendation[int]{2, fmt.Sprintf("GPU offload with %s RAM: the GPU batches two sequences for little more than the cost of one, and %s, which fits twice", bytesize.Size(mem), kv)}
		}
		return Recommendation[int]{4, fmt.Sprintf("GPU offload with %s RAM: the GPU batches sequences almost for free and %s, which fits four times", bytesize.Size(mem), kv)}
	}
	const bound = "CPU decoding is memory-bandwidth bound, so every extra sequence slows the others"
	switch {
	case mem <= 8*gib || cores < 8:
		return Recommendation[int]{1, fmt.Sprintf("CPU only, %d performance cores and %s RAM: %s and %s; one request at a time keeps latency predictable", cores, bytesize.Size(mem), bound, kv)}
	case cores < 16 || mem <= 32*gib:
		return Recommendation[int]{2, fmt.Sprintf("CPU only, %d performance cores and %s RAM: enough cores and memory bandwidth for two sequences, although %s", cores, bytesize.Size(mem), bound)}
	}
	return Recommendation[int]{4, fmt.Sprintf("CPU only, %d performance cores and %s RAM: prompt batches of four sequences keep the cores busy and %s, which fits four times", cores, bytesize.Size(mem), kv)}
}

// recommendGPULayers offloads everything when a backend library and a GPU
// it drives are both present, and otherwise explains which half is missing.
func recommendGPULayers(p *Profile) (Recommendation[int], []string) {
	g := p.GPU
	has := func(b string) bool { return slices.Contains(g.Backends, b) }
	var nvidia, discrete, integrated []string
	for _, d := range g.Devices {
		if d.Vendor == "nvidia" {
			nvidia = append(nvidia, d.Name)
		}
		if d.Integrated {
			integrated = append(integrated, d.Name)
		} else if d.Vendor == "nvidia" || d.Vendor == "amd" {
			discrete = append(discrete, d.Name)
		}
	}
	switch {
	case has("cuda") && g.CUDA && g.Tegra:
		return Recommendation[int]{AllLayers, fmt.Sprintf("libggml-cuda.so is installed and the Jetson's integrated GPU has its driver (%s): offload every layer; the GPU's memory is system RAM, so this costs no extra memory and frees the CPU", g.CUDALibrary)}, nil
	case has("cuda") && g.CUDA:
		return Recommendation[int]{AllLayers, fmt.Sprintf("libggml-cuda.so is installed and %s has its driver (%s): offload every layer (999 = all); lower it if the model does not fit in VRAM", strings.Join(nvidia, ", "), g.CUDALibrary)}, nil
	case has("vulkan") && len(g.VulkanICDs) > 0 && (g.Tegra || len(discrete) > 0):
		gpus := strings.Join(append(slices.Clone(discrete), integrated...), ", ")
		return Recommendation[int]{AllLayers, fmt.Sprintf("libggml-vulkan.so is installed with a Vulkan driver (%s) for %s: offload every layer (999 = all); lower it if the model does not fit in VRAM", strings.Join(g.VulkanICDs, ", "), gpus)}, nil
	}

	worthUsing := g.Tegra || len(discrete) > 0
	switch {
	case has("cuda") && len(nvidia) > 0:
		missing := "device nodes (/dev/nvidia* or /dev/nvmap)"
		if g.CUDALibrary == "" {
			missing = "libcuda"
		}
		w := fmt.Sprintf("%s is present and libggml-cuda.so is installed, but the NVIDIA driver's %s is missing: install the driver (JetPack's nvidia-l4t-cuda on a Jetson) to use the GPU", strings.Join(nvidia, ", "), missing)
		return Recommendation[int]{0, "CUDA backend installed but the NVIDIA driver is incomplete (no " + missing + "): inference stays on the CPU"}, []string{w}
	case has("vulkan") && len(g.VulkanICDs) == 0 && len(g.Devices) > 0:
		return Recommendation[int]{0, "libggml-vulkan.so is installed but no Vulkan driver (ICD manifest) is: inference stays on the CPU"}, nil
	case has("vulkan") && len(integrated) > 0:
		return Recommendation[int]{0, fmt.Sprintf("libggml-vulkan.so is installed but the only GPU is integrated (%s): it shares the CPU's memory bandwidth and rarely beats the CPU path in llama.cpp; set gpu_layers to try it", strings.Join(integrated, ", "))}, nil
	case len(g.Backends) > 0:
		return Recommendation[int]{0, fmt.Sprintf("GPU backend %s is installed but no GPU it can drive was found: inference runs on the CPU", strings.Join(g.Backends, ", "))}, nil
	case worthUsing:
		gpus := strings.Join(append(slices.Clone(discrete), nvidiaTegra(g)...), ", ")
		w := fmt.Sprintf("%s is present but the llama.cpp library directory has no GPU backend (libggml-cuda.so or libggml-vulkan.so): install a CUDA build of the libraries to use it", gpus)
		return Recommendation[int]{0, "a GPU is present but no GPU backend library is installed: inference runs on the CPU"}, []string{w}
	}
	return Recommendation[int]{0, "no GPU llama.cpp can use and no GPU backend library installed: inference runs on the CPU"}, nil
}

func nvidiaTegra(g GPU) []string {
	var out []string
	for _, d := range g.Devices {
		if d.Integrated && d.Vendor == "nvidia" {
			out = append(out, d.Name)
		}
	}
	return out
}

func recommendMMap(p *Profile, offloaded bool) Recommendation[bool] {
	if offloaded && p.GPU.Tegra {
		return Recommendation[bool]{false, "every layer goes to the Jetson's integrated GPU, whose memory is system RAM: llama.cpp copies the weights into CUDA buffers, and a mapped file would keep a second, page-cache copy in the same RAM"}
	}
	return Recommendation[bool]{true, "weights are paged in on demand and shared through the page cache, so the model loads fast and a restart reuses it; under memory pressure the kernel drops clean pages instead of OOM-killing emberd"}
}

// mlockMinBytes is the RAM above which locking a model is safe: below it a
// model that is a large share of RAM, locked, starves the OS.
const mlockMinBytes = 16 * gib

func recommendMLock(p *Profile, offloaded bool) Recommendation[bool] {
	switch {
	case offloaded && p.GPU.Tegra:
		return Recommendation[bool]{false, "the weights live in CUDA buffers, which the kernel never swaps out: there is nothing to lock"}
	case p.MemoryBytes < mlockMinBytes:
		return Recommendation[bool]{false, fmt.Sprintf("%s RAM is not ample (< 16 GiB): a locked model that is a large share of it leaves the OS nothing to reclaim and the OOM killer picks emberd; unlocked, clean model pages are simply re-read", bytesize.Size(p.MemoryBytes))}
	}
	why := fmt.Sprintf("%s RAM is ample: locking keeps the weights resident, so the first token after an idle spell is not slowed by page faults", bytesize.Size(p.MemoryBytes))
	if p.SwapBytes > 0 {
		why += " and swap cannot take them"
	}
	return Recommendation[bool]{true, why + " (the unit needs LimitMEMLOCK=infinity)"}
}

// ggml scores a CPU variant by the features it was built for: each must be
// present (else the score is 0: unusable) and adds its weight. These are
// ggml's weights (ggml-cpu/arch/{x86,arm}/cpu-feats.cpp), so the highest
// score here is the library ggml_backend_load_best picks.
var (
	x86FeatureWeights = map[string]int{
		"FMA": 1, "F16C": 1 << 1, "SSE42": 1 << 2, "BMI2": 1 << 3, "AVX": 1 << 4, "AVX2": 1 << 5,
		"AVX_VNNI": 1 << 6, "AVX512": 1 << 7, "AVX512_VBMI": 1 << 8, "AVX512_BF16": 1 << 9,
		"AVX512_VNNI": 1 << 10, "AMX_INT8": 1 << 11,
	}
	armFeatureWeights = map[string]int{"DOTPROD": 1 << 1, "FP16": 1 << 2, "SVE": 1 << 3, "I8MM": 1 << 4, "SVE2": 1 << 5, "SME": 1 << 6}

	// x86Variants are ggml's GGML_CPU_ALL_VARIANTS builds (ggml/src/CMakeLists.txt),
	// the libggml-cpu-*.so names node-llama-cpp's linux-x64 package ships.
	x86Variants = map[string][]string{
		"x64":            nil,
		"sse42":          {"SSE42"},
		"sandybridge":    {"SSE42", "AVX"},
		"ivybridge":      {"SSE42", "AVX", "F16C"},
		"piledriver":     {"SSE42", "AVX", "F16C", "FMA"},
		"haswell":        {"SSE42", "AVX", "F16C", "FMA", "AVX2", "BMI2"},
		"skylakex":       {"SSE42", "AVX", "F16C", "FMA", "AVX2", "BMI2", "AVX512"},
		"cannonlake":     {"SSE42", "AVX", "F16C", "FMA", "AVX2", "BMI2", "AVX512", "AVX512_VBMI"},
		"cascadelake":    {"SSE42", "AVX", "F16C", "FMA", "AVX2", "BMI2", "AVX512", "AVX512_VNNI"},
		"icelake":        {"SSE42", "AVX", "F16C", "FMA", "AVX2", "BMI2", "AVX512", "AVX512_VBMI", "AVX512_VNNI"},
		"cooperlake":     {"SSE42", "AVX", "F16C", "FMA", "AVX2", "BMI2", "AVX512", "AVX512_VNNI", "AVX512_BF16"},
		"zen4":           {"SSE42", "AVX", "F16C", "FMA", "AVX2", "BMI2", "AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16"},
		"alderlake":      {"SSE42", "AVX", "F16C", "FMA", "AVX2", "BMI2", "AVX_VNNI"},
		"sapphirerapids": {"SSE42", "AVX", "F16C", "FMA", "AVX2", "BMI2", "AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16", "AMX_INT8"},
	}
	// armVariants are ggml's Linux arm64 builds, named for the architecture
	// version that introduced their feature set.
	armVariants = map[string][]string{
		"armv8.0_1": nil,
		"armv8.2_1": {"DOTPROD"},
		"armv8.2_2": {"DOTPROD", "FP16"},
		"armv8.2_3": {"DOTPROD", "FP16", "SVE"},
		"armv8.6_1": {"DOTPROD", "FP16", "SVE", "I8MM"},
		"armv8.6_2": {"DOTPROD", "FP16", "SVE", "I8MM", "SVE2"},
		"armv9.2_1": {"DOTPROD", "FP16", "SVE", "I8MM", "SME"},
		"armv9.2_2": {"DOTPROD", "FP16", "SVE", "I8MM", "SVE2", "SME"},
	}
)

// hasFeature maps ggml's feature names onto the profile's flags.
func hasFeature(flags []string, feature string) bool {
	switch feature {
	case "SSE42":
		return slices.Contains(flags, "SSE4_2")
	case "AVX512":
		for _, f := range []string{"AVX512F", "AVX512CD", "AVX512VL", "AVX512DQ", "AVX512BW"} {
			if !slices.Contains(flags, f) {
				return false
			}
		}
		return true
	}
	return slices.Contains(flags, feature)
}

// variantScore is ggml's score for variant on this CPU: 0 when unusable;
// known is false for a name ember has no feature list for.
func variantScore(variant string, c CPU) (score int, missing []string, known bool) {
	if variant == GenericCPUVariant {
		return 1, nil, true
	}
	features, weights := x86Variants[variant], x86FeatureWeights
	_, isX86 := x86Variants[variant]
	_, isARM := armVariants[variant]
	switch {
	case isX86 && (c.Arch == "x86_64"):
	case isARM && c.Arch == "aarch64":
		features, weights = armVariants[variant], armFeatureWeights
	case isX86 || isARM:
		return 0, []string{"a different CPU architecture"}, true
	default:
		return 0, nil, false
	}
	score = 1
	for _, f := range features {
		if !hasFeature(c.Flags, f) {
			missing = append(missing, f)
			continue
		}
		score += weights[f]
	}
	if len(missing) > 0 {
		return 0, missing, true
	}
	return score, nil, true
}

func recommendCPUVariant(p *Profile) Recommendation[string] {
	variants := p.CPU.GGMLVariants
	if len(variants) == 0 {
		return Recommendation[string]{"", "no libggml-cpu*.so found (no library directory given, or it is empty): install the llama.cpp libraries"}
	}
	best, bestScore := "", 0
	var unknown []string
	// nearest is the unusable variant missing the fewest features: what
	// the CPU would need for the next step up.
	nearest, nearestMissing, unusable := "", []string(nil), 0
	for _, v := range variants {
		score, missing, known := variantScore(v, p.CPU)
		switch {
		case !known:
			unknown = append(unknown, v)
		case score == 0:
			unusable++
			if nearest == "" || len(missing) < len(nearestMissing) ||
				len(missing) == len(nearestMissing) && v < nearest {
				nearest, nearestMissing = v, missing
			}
		case score > bestScore:
			best, bestScore = v, score
		}
	}
	var b strings.Builder
	if best == "" {
		b.WriteString("none of the installed CPU variants runs on this CPU")
	} else {
		need := "only the baseline instruction set"
		if fs := append(slices.Clone(x86Variants[best]), armVariants[best]...); len(fs) > 0 {
			need = strings.Join(fs, ", ")
		}
		if best == GenericCPUVariant {
			need = "whatever it was built for (a single build, not per-CPU variants)"
		}
		fmt.Fprintf(&b, "ggml's loader scores each installed libggml-cpu-*.so by the features it was built for and loads the best one this CPU supports: %s, built for %s", best, need)
	}
	if unusable > 0 {
		fmt.Fprintf(&b, "; %d installed variants need features this CPU lacks, the nearest being %s (needs %s)",
			unusable, nearest, strings.Join(nearestMissing, ", "))
	}
	if len(unknown) > 0 {
		fmt.Fprintf(&b, "; ember does not know %s, which ggml may still prefer", strings.Join(unknown, ", "))
	}
	return Recommendation[string]{best, b.String()}
}

// warnings lists what an operator should fix or expect, most fundamental
// first: the OS, the CPU, memory, the state disk.
func warnings(p *Profile, r Recommendations) []string {
	var w []string
	c := p.CPU
	if bits32(c.Arch) || p.Userland == "armhf" || p.Userland == "i386" {
		what := c.Arch
		if p.Userland != "" {
			what = p.Userland + " userland on " + c.Arch
		}
		w = append(w, fmt.Sprintf("32-bit OS (%s) is unsupported: ember and its llama.cpp libraries are 64-bit only; install the 64-bit OS (Raspberry Pi OS 64-bit, arm64 or amd64)", what))
	}
	switch {
	case c.Arch == "x86_64" && !slices.Contains(c.Flags, "AVX2"):
		kernels := "baseline SSE"
		if r.CPUVariant.Value != "" {
			kernels = r.CPUVariant.Value
		}
		w = append(w, fmt.Sprintf("no AVX2 on %s: llama.cpp runs its %s kernels, several times slower than AVX2; expect low tokens/s and prefer models of 1.5B parameters or fewer", c.ModelName, kernels))
	case c.Arch == "aarch64" && !slices.Contains(c.Flags, "DOTPROD"):
		w = append(w, fmt.Sprintf("no dotprod on %s: quantised dot products run as plain NEON; expect low tokens/s and prefer models of 1.5B parameters or fewer", c.ModelName))
	}
	if r.CPUVariant.Value == "" && len(c.GGMLVariants) > 0 {
		w = append(w, "no installed libggml-cpu variant runs on this CPU: llama.cpp will fail to load; install the libraries for this architecture")
	}

	if p.MemoryBytes > 0 && p.MemoryBytes < 2*gib {
		w = append(w, fmt.Sprintf("only %s RAM: stay with models of 1B parameters or fewer at Q4", bytesize.Size(p.MemoryBytes)))
	}
	if p.MemoryBytes > 0 && p.MemoryBytes <= 4*gib && p.SwapBytes == 0 {
		w = append(w, fmt.Sprintf("no swap with %s RAM: a load that overshoots memory gets emberd OOM-killed; enable zram swap (zram-tools, or nvzramconfig on a Jetson)", bytesize.Size(p.MemoryBytes)))
	}

	if d := p.Disk; d != nil {
		switch {
		case d.Kind == KindSDCard:
			w = append(w, fmt.Sprintf("state dir %s is on an SD card (%s): ember fsyncs its queue and database there and SD cards wear out under sustained fsync load; move state_dir to eMMC, NVMe or a USB SSD", d.Path, d.BlockDevice))
		case d.RemovableFlash:
			w = append(w, fmt.Sprintf("state dir %s is on removable flash (%s): it wears out under ember's fsync load and may be unplugged; move state_dir to internal storage", d.Path, d.BlockDevice))
		}
		if d.TotalBytes > 0 && d.FreeBytes < gib {
			w = append(w, fmt.Sprintf("only %s free on %s, which holds the state dir: the queue stops accepting records when the disk fills", bytesize.Size(d.FreeBytes), d.MountPoint))
		}
	}

	if major, _, _ := strings.Cut(p.L4T, "."); major != "" && atoi(major) < 35 {
		w = append(w, fmt.Sprintf("L4T %s (JetPack 4) ships CUDA 10.2, too old for llama.cpp's CUDA backend: upgrade to JetPack 5 or 6 where the module supports it", p.L4T))
	}
	return w
}

func thermalWarnings(p *Profile) []string {
	var w []string
	for _, t := range p.Temperatures {
		if t.Celsius >= hotCelsius {
			w = append(w, fmt.Sprintf("%s (%s) is at %.1f °C: the SoC throttles near its limit and inference keeps it there; improve cooling or expect lower tokens/s", t.Zone, t.Type, t.Celsius))
		}
	}
	return w
}

// atoi parses a decimal, or returns a large number for anything else.
func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 1 << 30
	}
	return n
}

func bits32(arch string) bool {
	return strings.HasPrefix(arch, "armv7") || strings.HasPrefix(arch, "armv6") || arch == "i686" || arch == "i386"
}
