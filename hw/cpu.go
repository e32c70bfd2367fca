package hw

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// CPU describes the processor as inference cares about it.
type CPU struct {
	// ModelName is the marketing name on x86 ("Intel(R) Atom(TM) Processor
	// E3940 @ 1.60GHz") and the core type on ARM ("Cortex-A78AE"; big.LITTLE
	// lists each, "Cortex-A55 + Cortex-A76").
	ModelName string `json:"model_name"`
	// Arch is the kernel's machine name: "aarch64", "armv7l", "x86_64".
	Arch string `json:"arch"`
	// PhysicalCores counts cores, not hyper-threads, among online CPUs.
	PhysicalCores int `json:"physical_cores"`
	// LogicalCores counts online CPUs (hardware threads).
	LogicalCores int `json:"logical_cores"`
	// PerformanceCores counts the physical cores of the fastest class: the
	// big cores of ARM big.LITTLE (by cpu_capacity), the P-cores of an Intel
	// hybrid part (by /sys/devices/cpu_core). It equals PhysicalCores on
	// homogeneous CPUs.
	PerformanceCores int `json:"performance_cores"`
	// Flags are the SIMD features every core has that matter to ggml,
	// normalised to upper case: NEON, FP16, DOTPROD, I8MM, BF16, SVE, SVE2,
	// SME on ARM; SSE3 … SSE4_2, AVX, F16C, FMA, BMI2, AVX2, AVX_VNNI,
	// AVX512F/CD/DQ/BW/VL, AVX512_VBMI/VNNI/BF16/FP16, AMX_* on x86.
	Flags []string `json:"flags"`
	// MaxFrequencyMHz is the highest cpuinfo_max_freq of any online core.
	MaxFrequencyMHz float64 `json:"max_frequency_mhz,omitempty"`
	// GGMLVariants lists the libggml-cpu-<variant>.so CPU backends installed
	// in the library directory ("" for a plain libggml-cpu.so).
	GGMLVariants []string `json:"ggml_variants,omitempty"`
}

// cpuinfo is /proc/cpuinfo split into per-processor blocks and the lines
// outside them (a Raspberry Pi's trailing Hardware/Revision/Model).
type cpuinfo struct {
	procs []map[string]string
	extra map[string]string
}

// cpuInfo reads and parses /proc/cpuinfo once per Detect.
func (e *env) cpuInfo() (*cpuinfo, error) {
	if e.cpuinfo == nil && e.cpuinfoErr == nil {
		path := e.procPath("cpuinfo")
		b, err := os.ReadFile(path)
		if err != nil {
			e.cpuinfoErr = fileErr(path, err)
		} else {
			e.cpuinfo = parseCPUInfo(string(b))
		}
	}
	return e.cpuinfo, e.cpuinfoErr
}

func parseCPUInfo(s string) *cpuinfo {
	ci := &cpuinfo{extra: map[string]string{}}
	block := map[string]string{}
	flush := func() {
		if _, ok := block["processor"]; ok {
			if _, err := strconv.Atoi(block["processor"]); err == nil {
				ci.procs = append(ci.procs, block)
				block = map[string]string{}
				return
			}
		}
		for k, v := range block {
			ci.extra[k] = v
		}
		block = map[string]string{}
	}
	for _, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		block[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	flush()
	return ci
}

// collectCPU reads /proc/cpuinfo and /sys/devices/system/cpu.
func collectCPU(_ context.Context, e *env, p *Profile) error {
	var errs []error
	ci, err := e.cpuInfo()
	if err != nil {
		errs = append(errs, err)
		ci = &cpuinfo{extra: map[string]string{}}
	}
	c := &p.CPU
	c.Arch = e.kernelArch(ci)
	c.ModelName = cpuModelName(ci)
	c.Flags = normaliseFlags(ci)

	online, err := e.onlineCPUs(ci)
	if err != nil {
		errs = append(errs, err)
	}
	c.LogicalCores = len(online)
	cores, err := e.coreOf(online, ci)
	if err != nil {
		errs = append(errs, err)
	}
	c.PhysicalCores = countCores(online, cores)
	c.PerformanceCores = countCores(e.performanceCPUs(online, ci), cores)
	if c.MaxFrequencyMHz, err = e.maxFrequencyMHz(online, ci); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// kernelArch returns the machine name: /proc/sys/kernel/arch where the
// kernel has it, else what /proc/cpuinfo implies.
func (e *env) kernelArch(ci *cpuinfo) string {
	if a, err := readTrim(e.procPath("sys", "kernel", "arch")); err == nil && a != "" {
		return a
	}
	if len(ci.procs) == 0 {
		return ""
	}
	first := ci.procs[0]
	if _, ok := first["vendor_id"]; ok {
		if slices.Contains(strings.Fields(first["flags"]), "lm") {
			return "x86_64"
		}
		return "i686"
	}
	// A 32-bit ARM kernel names the core "ARMv7 Processor rev 3 (v7l)" and
	// reports architecture 7 even on a 64-bit Cortex-A72.
	name := first["model name"]
	switch {
	case strings.Contains(name, "(v7l)"), first["CPU architecture"] == "7":
		return "armv7l"
	case strings.Contains(name, "(v6l)"):
		return "armv6l"
	case first["CPU architecture"] == "8" || first["CPU architecture"] == "AArch64":
		return "aarch64"
	}
	return ""
}

// armParts names ARM Ltd (implementer 0x41) and NVIDIA (0x4e) cores by part
// number, as the arm64 kernel prints no model name.
var armParts = map[string]string{
	"0x41/0xd02": "Cortex-A34", "0x41/0xd03": "Cortex-A53", "0x41/0xd04": "Cortex-A35",
	"0x41/0xd05": "Cortex-A55", "0x41/0xd06": "Cortex-A65", "0x41/0xd07": "Cortex-A57",
	"0x41/0xd08": "Cortex-A72", "0x41/0xd09": "Cortex-A73", "0x41/0xd0a": "Cortex-A75",
	"0x41/0xd0b": "Cortex-A76", "0x41/0xd0c": "Neoverse-N1", "0x41/0xd0d": "Cortex-A77",
	"0x41/0xd0e": "Cortex-A76AE", "0x41/0xd40": "Neoverse-V1", "0x41/0xd41": "Cortex-A78",
	"0x41/0xd42": "Cortex-A78AE", "0x41/0xd43": "Cortex-A65AE", "0x41/0xd44": "Cortex-X1",
	"0x41/0xd46": "Cortex-A510", "0x41/0xd47": "Cortex-A710", "0x41/0xd48": "Cortex-X2",
	"0x41/0xd49": "Neoverse-N2", "0x41/0xd4a": "Neoverse-E1", "0x41/0xd4b": "Cortex-A78C",
	"0x41/0xd4c": "Cortex-X1C", "0x41/0xd4d": "Cortex-A715", "0x41/0xd4e": "Cortex-X3",
	"0x41/0xd4f": "Neoverse-V2", "0x41/0xd80": "Cortex-A520", "0x41/0xd81": "Cortex-A720",
	"0x41/0xd82": "Cortex-X4", "0x41/0xd84": "Neoverse-V3", "0x41/0xd85": "Cortex-X925",
	"0x41/0xd87": "Cortex-A725", "0x41/0xd8e": "Neoverse-N3",
	"0x4e/0x003": "NVIDIA Denver 2", "0x4e/0x004": "NVIDIA Carmel",
}

// littleParts are ARM's efficiency cores; used to find the big cores of a
// big.LITTLE CPU whose kernel exposes no cpu_capacity.
var littleParts = map[string]bool{
	"0x41/0xd02": true, "0x41/0xd03": true, "0x41/0xd04": true, "0x41/0xd05": true,
	"0x41/0xd46": true, "0x41/0xd80": true,
}

func armPart(proc map[string]string) string {
	impl, part := proc["CPU implementer"], proc["CPU part"]
	if impl == "" || part == "" {
		return ""
	}
	return strings.ToLower(impl) + "/" + strings.ToLower(part)
}

func cpuModelName(ci *cpuinfo) string {
	if len(ci.procs) == 0 {
		return ci.extra["Hardware"]
	}
	if name := ci.procs[0]["model name"]; name != "" && ci.procs[0]["CPU implementer"] == "" {
		return name
	}
	var names []string
	for _, proc := range ci.procs {
		key := armPart(proc)
		if key == "" {
			continue
		}
		name, ok := armParts[key]
		if !ok {
			name = "ARM core " + key
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return ci.procs[0]["model name"]
	}
	return strings.Join(names, " + ")
}

// flagNames maps the kernel's feature names to ember's normalised ones, in
// the order Flags lists them.
var flagNames = []struct{ raw, norm string }{
	// ARM: /proc/cpuinfo "Features" (arm64 names; 32-bit kernels say "neon").
	{"asimd", "NEON"}, {"neon", "NEON"}, {"asimdhp", "FP16"}, {"asimddp", "DOTPROD"},
	{"i8mm", "I8MM"}, {"bf16", "BF16"}, {"sve", "SVE"}, {"sve2", "SVE2"}, {"sme", "SME"},
	// x86: /proc/cpuinfo "flags" ("pni" is the kernel's name for SSE3).
	{"pni", "SSE3"}, {"ssse3", "SSSE3"}, {"sse4_1", "SSE4_1"}, {"sse4_2", "SSE4_2"},
	{"avx", "AVX"}, {"f16c", "F16C"}, {"fma", "FMA"}, {"bmi2", "BMI2"}, {"avx2", "AVX2"},
	{"avx_vnni", "AVX_VNNI"}, {"avx512f", "AVX512F"}, {"avx512cd", "AVX512CD"},
	{"avx512dq", "AVX512DQ"}, {"avx512bw", "AVX512BW"}, {"avx512vl", "AVX512VL"},
	// The kernel spells VBMI without the underscore its siblings have.
	{"avx512vbmi", "AVX512_VBMI"}, {"avx512_vnni", "AVX512_VNNI"}, {"avx512_bf16", "AVX512_BF16"},
	{"avx512_fp16", "AVX512_FP16"}, {"amx_tile", "AMX_TILE"}, {"amx_int8", "AMX_INT8"},
	{"amx_bf16", "AMX_BF16"},
}

// normaliseFlags returns the ggml-relevant features every processor block
// lists: a variant built for a feature only some cores have would crash on
// the others.
func normaliseFlags(ci *cpuinfo) []string {
	var common map[string]bool
	for _, proc := range ci.procs {
		raw := proc["flags"]
		if raw == "" {
			raw = proc["Features"]
		}
		set := map[string]bool{}
		for _, f := range strings.Fields(raw) {
			if common == nil || common[f] {
				set[f] = true
			}
		}
		common = set
	}
	if common == nil {
		// Old 32-bit ARM kernels print Features once, outside the blocks.
		common = map[string]bool{}
		for _, f := range strings.Fields(ci.extra["Features"]) {
			common[f] = true
		}
	}
	flags := []string{}
	for _, fn := range flagNames {
		if common[fn.raw] && !slices.Contains(flags, fn.norm) {
			flags = append(flags, fn.norm)
		}
	}
	return flags
}

// onlineCPUs lists the CPUs the scheduler can use. Jetson power modes take
// cores offline, so the online set, not the present one, bounds threads.
func (e *env) onlineCPUs(ci *cpuinfo) ([]int, error) {
	path := e.sysPath("devices", "system", "cpu", "online")
	s, err := readTrim(path)
	if err == nil {
		cpus, perr := parseCPUList(s)
		if perr == nil && len(cpus) > 0 {
			return cpus, nil
		}
		err = fmt.Errorf("parsing %s %q: %w", path, s, perr)
	}
	var cpus []int
	for _, proc := range ci.procs {
		if n, perr := strconv.Atoi(proc["processor"]); perr == nil {
			cpus = append(cpus, n)
		}
	}
	if len(cpus) > 0 && errors.Is(err, ErrNotPresent) {
		return cpus, nil // cpuinfo lists online CPUs too
	}
	return cpus, err
}

// coreOf maps each online CPU to a key naming its physical core: the
// sysfs topology (package and core sibling list) where every CPU has one,
// else cpuinfo's "physical id"/"core id" (x86). Without either, each CPU
// counts as its own core, true of every ARM board ember targets.
func (e *env) coreOf(online []int, ci *cpuinfo) (map[int]string, error) {
	cores := map[int]string{}
	for _, cpu := range online {
		dir := e.sysPath("devices", "system", "cpu", "cpu"+strconv.Itoa(cpu), "topology")
		sib, err := readTrim(dir + "/core_cpus_list")
		if err != nil {
			sib, err = readTrim(dir + "/thread_siblings_list")
		}
		if err != nil {
			cores = nil
			break
		}
		pkg, err := readTrim(dir + "/physical_package_id")
		if err != nil {
			pkg = "0"
		}
		cores[cpu] = pkg + "/" + sib
	}
	if cores != nil {
		return cores, nil
	}

	cores = map[int]string{}
	for _, proc := range ci.procs {
		n, err := strconv.Atoi(proc["processor"])
		coreID, ok := proc["core id"]
		if err != nil || !ok {
			continue
		}
		cores[n] = proc["physical id"] + "/" + coreID
	}
	for _, cpu := range online {
		if _, ok := cores[cpu]; !ok {
			cores = map[int]string{}
			for _, cpu := range online {
				cores[cpu] = strconv.Itoa(cpu)
			}
			return cores, notPresent("cpu topology (no sysfs topology or cpuinfo core id; counting each CPU as a core)")
		}
	}
	return cores, nil
}

// countCores counts the distinct physical cores among cpus.
func countCores(cpus []int, coreOf map[int]string) int {
	seen := map[string]bool{}
	for _, cpu := range cpus {
		key, ok := coreOf[cpu]
		if !ok {
			key = "cpu" + strconv.Itoa(cpu)
		}
		seen[key] = true
	}
	return len(seen)
}

// performanceCPUs returns the online CPUs of the fastest class. llama.cpp
// splits each matrix evenly across its threads and waits for the slowest,
// so a thread on a little core holds back every big one.
func (e *env) performanceCPUs(online []int, ci *cpuinfo) []int {
	// Intel hybrid (Alder Lake and later): the P-cores' PMU lists them.
	if s, err := readTrim(e.sysPath("devices", "cpu_core", "cpus")); err == nil {
		if pcores, err := parseCPUList(s); err == nil {
			if perf := intersect(online, pcores); len(perf) > 0 {
				return perf
			}
		}
	}
	// ARM big.LITTLE: capacity is scaled to 1024 for the fastest core. A
	// core within 75% of it counts as big, so the mid cores of a 1+3+4
	// phone-class SoC count too while little ones (~25-40%) do not.
	capacity := map[int]int64{}
	var best int64
	for _, cpu := range online {
		c, err := readInt(e.sysPath("devices", "system", "cpu", "cpu"+strconv.Itoa(cpu), "cpu_capacity"))
		if err != nil {
			capacity = nil
			break
		}
		capacity[cpu] = c
		best = max(best, c)
	}
	if capacity != nil && best > 0 {
		var perf []int
		for _, cpu := range online {
			if capacity[cpu]*4 >= best*3 {
				perf = append(perf, cpu)
			}
		}
		return perf
	}
	// No capacity: drop known little cores when cores are mixed.
	parts := map[int]string{}
	mixed := false
	for _, proc := range ci.procs {
		n, err := strconv.Atoi(proc["processor"])
		if err != nil {
			continue
		}
		parts[n] = armPart(proc)
		mixed = mixed || parts[n] != armPart(ci.procs[0])
	}
	if mixed {
		var perf []int
		for _, cpu := range online {
			if !littleParts[parts[cpu]] {
				perf = append(perf, cpu)
			}
		}
		if len(perf) > 0 {
			return perf
		}
	}
	return online
}

func intersect(a, b []int) []int {
	var out []int
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// maxFrequencyMHz is the highest cpufreq maximum of any online core (big
// cores on big.LITTLE), else the highest "cpu MHz" cpuinfo reports.
func (e *env) maxFrequencyMHz(online []int, ci *cpuinfo) (float64, error) {
	var best int64
	for _, cpu := range online {
		khz, err := readInt(e.sysPath("devices", "system", "cpu", "cpu"+strconv.Itoa(cpu), "cpufreq", "cpuinfo_max_freq"))
		if err == nil {
			best = max(best, khz)
		}
	}
	if best > 0 {
		return float64(best) / 1000, nil
	}
	var mhz float64
	for _, proc := range ci.procs {
		if f, err := strconv.ParseFloat(proc["cpu MHz"], 64); err == nil {
			mhz = max(mhz, f)
		}
	}
	if mhz > 0 {
		return mhz, nil
	}
	return 0, notPresent("cpu frequency (no cpufreq and no cpuinfo MHz)")
}
