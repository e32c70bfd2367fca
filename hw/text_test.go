package hw

import (
	"errors"
	"strings"
	"testing"
)

func TestWriteText(t *testing.T) {
	t.Parallel()
	p := detect(t, fixture("raspberry-pi-4", "linux-arm64"))
	var b strings.Builder
	if err := WriteText(&b, p); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"platform      raspberry-pi-4\n",
		"model         Raspberry Pi 4 Model B Rev 1.4\n",
		"cores         4 physical, 4 logical, 4 performance\n",
		"state disk    /var/lib/ember on / (ext4, /dev/mmcblk0p2)\n",
		"mmcblk0: sd-card \"SR64G\", removable flash",
		"\nrecommended\n",
		"  threads      4          4 physical cores: one thread per core",
		"  cpu_variant  armv8.0_1  ggml's loader",
		"\nwarnings\n  - no dotprod on Cortex-A72",
		"\nmissing\n  - cpu: cpu topology",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for i, line := range strings.Split(out, "\n") {
		if strings.TrimRight(line, " ") != line {
			t.Errorf("line %d has trailing spaces: %q", i+1, line)
		}
	}
}

func TestWriteTextJetson(t *testing.T) {
	t.Parallel()
	p := detect(t, fixture("jetson-orin-nano", "linux-arm64-cuda"))
	var b strings.Builder
	if err := WriteText(&b, p); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"l4t           36.4.0 (JetPack 6.1)\n",
		"swap          3.6 GiB (zram devices 3.6 GiB)\n",
		"gpu           CUDA (Jetson integrated); NVIDIA Tegra integrated GPU (tegra234)\n",
		"              libcuda /usr/lib/aarch64-linux-gnu/nvidia/libcuda.so.1.1\n",
		"              vulkan nvidia_icd.json\n",
		"  gpu_layers   999",
		"  mmap         false",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteTextError(t *testing.T) {
	t.Parallel()
	p := detect(t, fixture("raspberry-pi-5", "linux-arm64"))
	if err := WriteText(failWriter{}, p); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err = %v, want the writer's error", err)
	}
}
