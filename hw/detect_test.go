package hw

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDetectHost(t *testing.T) {
	t.Parallel()
	// The zero Options read this machine.
	p, err := Detect(context.Background(), Options{})
	if err != nil {
		t.Fatalf("Detect(Options{}) on this host: %v", err)
	}
	if p.CPU.PhysicalCores < 1 {
		t.Fatalf("physical_cores = %d", p.CPU.PhysicalCores)
	}

	opts := Options{StateDir: t.TempDir()}
	if lib := filepath.Join("..", "lib", "ember", "llama"); exists(lib) {
		opts.LibDir = lib
	}
	p, err = Detect(context.Background(), opts)
	if err != nil {
		t.Fatalf("Detect on this host: %v", err)
	}
	if p.CPU.PhysicalCores < 1 || p.CPU.LogicalCores < p.CPU.PhysicalCores {
		t.Errorf("cores: %d physical, %d logical", p.CPU.PhysicalCores, p.CPU.LogicalCores)
	}
	if p.MemoryBytes == 0 {
		t.Error("memory_bytes = 0")
	}
	if p.Disk == nil || p.Disk.TotalBytes == 0 {
		t.Errorf("disk = %+v, want the temp dir's file system measured", p.Disk)
	}
	if p.Recommended.Threads.Value < 1 || p.Recommended.Threads.Value > p.CPU.LogicalCores {
		t.Errorf("threads = %d with %d logical cores", p.Recommended.Threads.Value, p.CPU.LogicalCores)
	}
	for name, reason := range reasonsOf(p.Recommended) {
		if reason == "" {
			t.Errorf("recommended.%s has no reason", name)
		}
	}
	if err := WriteText(new(strings.Builder), p); err != nil {
		t.Fatal(err)
	}
	t.Logf("host: %s, %s, %d/%d cores, missing %d, errors %+v", p.Platform, p.CPU.ModelName,
		p.CPU.PhysicalCores, p.CPU.LogicalCores, len(p.Missing), p.Errors)
}

func reasonsOf(r Recommendations) map[string]string {
	return map[string]string{
		"threads": r.Threads.Reason, "context": r.Context.Reason, "parallel": r.Parallel.Reason,
		"gpu_layers": r.GPULayers.Reason, "mmap": r.MMap.Reason, "mlock": r.MLock.Reason,
		"cpu_variant": r.CPUVariant.Reason,
	}
}

// TestProfileJSON pins the field names of the public JSON contract.
func TestProfileJSON(t *testing.T) {
	t.Parallel()
	p := detect(t, fixture("jetson-orin-nano", "linux-arm64-cuda"))
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{
		"platform", "model", "soc", "l4t", "jetpack", "userland",
		"cpu.model_name", "cpu.arch", "cpu.physical_cores", "cpu.logical_cores", "cpu.performance_cores",
		"cpu.flags", "cpu.max_frequency_mhz", "cpu.ggml_variants",
		"memory_bytes", "available_bytes", "swap_bytes", "zram", "zram_bytes",
		"disk.path", "disk.free_bytes", "disk.total_bytes", "disk.device", "disk.kind", "disk.removable_flash",
		"temperatures", "gpu.cuda", "gpu.tegra", "gpu.devices", "gpu.cuda_library", "gpu.vulkan_icds", "gpu.backends",
		"recommended.threads.value", "recommended.threads.reason",
		"recommended.context.value", "recommended.context.reason",
		"recommended.parallel.value", "recommended.gpu_layers.value", "recommended.gpu_layers.reason",
		"recommended.mmap.value", "recommended.mlock.value", "recommended.cpu_variant.value",
		"recommended.warnings", "missing",
	} {
		if _, ok := lookup(doc, key); !ok {
			t.Errorf("JSON has no %s", key)
		}
	}
	if v, _ := lookup(doc, "cpu.physical_cores"); v != float64(6) {
		t.Errorf("cpu.physical_cores = %v", v)
	}
	if v, _ := lookup(doc, "recommended.gpu_layers.value"); v != float64(AllLayers) {
		t.Errorf("recommended.gpu_layers.value = %v", v)
	}
	temps, _ := lookup(doc, "temperatures")
	first := temps.([]any)[0].(map[string]any)
	for _, k := range []string{"zone", "type", "celsius"} {
		if _, ok := first[k]; !ok {
			t.Errorf("temperature has no %s: %v", k, first)
		}
	}

	// Round trip: the printed JSON reads back into the same profile.
	var back Profile
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Recommended.Threads != p.Recommended.Threads || back.CPU.PhysicalCores != p.CPU.PhysicalCores {
		t.Errorf("round trip changed the profile: %+v", back.Recommended.Threads)
	}
}

func lookup(doc map[string]any, dotted string) (any, bool) {
	var cur any = doc
	for _, k := range strings.Split(dotted, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func TestDetectBadRoot(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, opts := range map[string]Options{
		"missing proc root":  {ProcRoot: filepath.Join(t.TempDir(), "nope"), SysRoot: t.TempDir()},
		"sys root is a file": {ProcRoot: t.TempDir(), SysRoot: file},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := Detect(context.Background(), opts)
			if !errors.Is(err, ErrBadRoot) {
				t.Fatalf("err = %v, want ErrBadRoot", err)
			}
		})
	}
}

func TestDetectCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Detect(ctx, fixture("raspberry-pi-5", "linux-arm64"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestBrokenSourcesDoNotBlindTheRest reads a tree with no cpuinfo, an
// unreadable device-tree model and nothing else but memory and one thermal
// zone: those two still come through.
func TestBrokenSourcesDoNotBlindTheRest(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	write(t, root, "proc/meminfo", "MemTotal:        1939508 kB\nMemFree:          812304 kB\nMemAvailable:    1503212 kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\n")
	write(t, root, "sys/class/thermal/thermal_zone0/type", "cpu-thermal\n")
	write(t, root, "sys/class/thermal/thermal_zone0/temp", "51000\n")
	// A directory where a file belongs: the read fails with EISDIR, a real
	// error rather than absence.
	if err := os.MkdirAll(filepath.Join(root, "proc", "device-tree", "model"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := detect(t, Options{
		ProcRoot: filepath.Join(root, "proc"), SysRoot: filepath.Join(root, "sys"),
		EtcRoot: filepath.Join(root, "etc"), DevRoot: filepath.Join(root, "dev"), RootDir: root,
	})
	if p.MemoryBytes != 1939508*1024 || len(p.Temperatures) != 1 || p.Temperatures[0].Celsius != 51 {
		t.Errorf("memory %d, temperatures %+v: the working sources were lost", p.MemoryBytes, p.Temperatures)
	}
	if !hasNote(p.Missing, "cpu", "cpuinfo") {
		t.Errorf("missing = %+v, want the absent cpuinfo", p.Missing)
	}
	if !hasNote(p.Errors, "board", "device-tree/model") {
		t.Errorf("errors = %+v, want the unreadable device-tree model", p.Errors)
	}
	r := p.Recommended
	if r.Threads.Value != 1 || r.Context.Value != 1024 || r.CPUVariant.Value != "" {
		t.Errorf("recommended = %+v", r)
	}
	for name, reason := range reasonsOf(r) {
		if reason == "" {
			t.Errorf("recommended.%s has no reason", name)
		}
	}
	for _, sub := range []string{"only 1.8 GiB RAM", "no swap with 1.8 GiB RAM"} {
		if !strings.Contains(strings.Join(r.Warnings, "\n"), sub) {
			t.Errorf("warnings %q lack %q", r.Warnings, sub)
		}
	}
}

// TestRootsFromEnvironment checks that empty roots follow HOST_PROC and
// HOST_SYS, as gopsutil does. It sets process environment, so it must not
// run in parallel.
func TestRootsFromEnvironment(t *testing.T) {
	dir := filepath.Join("testdata", "raspberry-pi-5")
	t.Setenv("HOST_PROC", filepath.Join(dir, "proc"))
	t.Setenv("HOST_SYS", filepath.Join(dir, "sys"))
	t.Setenv("HOST_ETC", filepath.Join(dir, "etc"))
	t.Setenv("HOST_DEV", filepath.Join(dir, "dev"))
	t.Setenv("HOST_ROOT", filepath.Join(dir, "root"))
	p := detect(t, Options{})
	if p.Platform != "raspberry-pi-5" || p.MemoryBytes != 8245888*1024 {
		t.Errorf("platform %q, memory %d: HOST_* roots were not followed", p.Platform, p.MemoryBytes)
	}
}

func hasNote(notes []Note, source, sub string) bool {
	for _, n := range notes {
		if n.Source == source && strings.Contains(n.Detail, sub) {
			return true
		}
	}
	return false
}

func write(t *testing.T, root, rel, content string) {
	t.Helper()
	path := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
