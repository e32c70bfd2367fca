package hw

import (
	"path/filepath"
	"slices"
	"testing"
)

// TestIntelHybrid reads a Core i5-1235U: 2 P-cores with hyper-threading
// and 8 E-cores. Only the P-cores count as performance cores.
func TestIntelHybrid(t *testing.T) {
	t.Parallel()
	opts := fixture("cpu-alderlake", "linux-x64")
	p := detect(t, opts)
	c := p.CPU
	if c.PhysicalCores != 10 || c.LogicalCores != 12 || c.PerformanceCores != 2 {
		t.Errorf("cores = %d physical, %d logical, %d performance; want 10, 12, 2", c.PhysicalCores, c.LogicalCores, c.PerformanceCores)
	}
	if c.MaxFrequencyMHz != 4400 {
		t.Errorf("max frequency = %v, want the P-cores' 4400", c.MaxFrequencyMHz)
	}
	for _, f := range []string{"AVX2", "AVX_VNNI", "FMA", "F16C", "BMI2"} {
		if !slices.Contains(c.Flags, f) {
			t.Errorf("flags %v lack %s", c.Flags, f)
		}
	}
	r := p.Recommended
	if r.Threads.Value != 2 || r.CPUVariant.Value != "alderlake" {
		t.Errorf("threads %d (%s), cpu_variant %q", r.Threads.Value, r.Threads.Reason, r.CPUVariant.Value)
	}
}

// TestBigLittleWithoutCapacity finds the big cores of a mixed CPU by part
// number when the kernel has no cpu_capacity.
func TestBigLittleWithoutCapacity(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	rock := filepath.Join("testdata", "rock-5b", "proc", "cpuinfo")
	b, err := readTrim(rock)
	if err != nil {
		t.Fatal(err)
	}
	write(t, root, "proc/cpuinfo", b+"\n")
	write(t, root, "sys/devices/system/cpu/online", "0-7\n")
	p := detect(t, Options{ProcRoot: filepath.Join(root, "proc"), SysRoot: filepath.Join(root, "sys"),
		EtcRoot: root, DevRoot: root, RootDir: root})
	if p.CPU.PhysicalCores != 8 || p.CPU.PerformanceCores != 4 || p.Recommended.Threads.Value != 4 {
		t.Errorf("cores %+v, threads %d", p.CPU, p.Recommended.Threads.Value)
	}
}

func TestKernelArch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, cpuinfo, want string
	}{
		{"arm64 kernel", "processor\t: 0\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU part\t: 0xd08\n", "aarch64"},
		{"32-bit kernel on a Cortex-A72", "processor\t: 0\nmodel name\t: ARMv7 Processor rev 3 (v7l)\nFeatures\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm crc32\nCPU implementer\t: 0x41\nCPU architecture: 7\nCPU part\t: 0xd08\n", "armv7l"},
		{"Pi Zero", "processor\t: 0\nmodel name\t: ARMv6-compatible processor rev 7 (v6l)\nFeatures\t: half thumb fastmult vfp edsp java tls\nCPU implementer\t: 0x41\nCPU architecture: 7\n", "armv7l"},
		{"x86_64", "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu lm sse4_2\n", "x86_64"},
		{"i686", "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse2\n", "i686"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := &env{proc: t.TempDir()}
			if got := e.kernelArch(parseCPUInfo(tt.cpuinfo)); got != tt.want {
				t.Errorf("kernelArch = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNormaliseFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, cpuinfo string
		want          []string
	}{
		{"Neoverse V1", "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma lrcpc dcpop sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs paca pacg dcpodp svei8mm svebf16 i8mm bf16 dgh rng\n",
			[]string{"NEON", "FP16", "DOTPROD", "I8MM", "BF16", "SVE"}},
		{"32-bit neon", "processor\t: 0\nFeatures\t: half thumb fastmult vfp edsp neon vfpv3\n", []string{"NEON"}},
		{"only features every core has", "processor\t: 0\nflags\t: pni avx avx2\n\nprocessor\t: 1\nflags\t: pni avx\n", []string{"SSE3", "AVX"}},
		// Flag order and spelling as a Sapphire Rapids kernel prints them.
		{"sapphire rapids", "processor\t: 0\nflags\t: fpu pni ssse3 fma sse4_1 sse4_2 avx f16c bmi2 avx2 avx512f avx512dq avx512ifma avx512cd avx512bw avx512vl avx_vnni avx512_bf16 avx512vbmi avx512_vbmi2 avx512_vnni avx512_bitalg avx512_vpopcntdq amx_bf16 avx512_fp16 amx_tile amx_int8\n",
			[]string{"SSE3", "SSSE3", "SSE4_1", "SSE4_2", "AVX", "F16C", "FMA", "BMI2", "AVX2", "AVX_VNNI", "AVX512F", "AVX512CD", "AVX512DQ", "AVX512BW", "AVX512VL", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16", "AVX512_FP16", "AMX_TILE", "AMX_INT8", "AMX_BF16"}},
		{"none", "", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := normaliseFlags(parseCPUInfo(tt.cpuinfo)); !slices.Equal(got, tt.want) {
				t.Errorf("flags = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseCPUList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{"0", []int{0}, false},
		{"0-3", []int{0, 1, 2, 3}, false},
		{"0-1,4,6-7\n", []int{0, 1, 4, 6, 7}, false},
		{"", nil, false},
		{"a-b", nil, true},
		{"1-x", nil, true},
		{"7-2", nil, true},
		{"0-99999999", nil, true},
	}
	for _, tt := range tests {
		got, err := parseCPUList(tt.in)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("parseCPUList(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func FuzzParseCPUInfo(f *testing.F) {
	for _, board := range []string{"jetson-orin-nano", "raspberry-pi-4", "up-squared-e3940"} {
		b, err := readTrim(filepath.Join("testdata", board, "proc", "cpuinfo"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add("processor : x\n\n:\n::\nflags")
	f.Fuzz(func(t *testing.T, s string) {
		ci := parseCPUInfo(s)
		_ = cpuModelName(ci)
		_ = normaliseFlags(ci)
		e := &env{proc: t.TempDir()}
		_ = e.kernelArch(ci)
	})
}

func FuzzParseCPUList(f *testing.F) {
	f.Add("0-3,5")
	f.Add("7-2")
	f.Add("0-999999999")
	f.Fuzz(func(t *testing.T, s string) {
		cpus, err := parseCPUList(s)
		if err == nil && len(cpus) > 1<<20 {
			t.Fatalf("%d CPUs from %q", len(cpus), s)
		}
	})
}
