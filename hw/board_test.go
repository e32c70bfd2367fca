package hw

import (
	"path/filepath"
	"testing"
)

// TestModelFromCPUInfo names a Raspberry Pi from /proc/cpuinfo's Model line
// when the device tree is not visible (a container without /proc/device-tree).
func TestModelFromCPUInfo(t *testing.T) {
	t.Parallel()
	b, err := readTrim(filepath.Join("testdata", "raspberry-pi-4", "proc", "cpuinfo"))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	write(t, root, "proc/cpuinfo", b+"\n")
	write(t, root, "sys/devices/system/cpu/online", "0-3\n")
	p := detect(t, Options{ProcRoot: filepath.Join(root, "proc"), SysRoot: filepath.Join(root, "sys"),
		EtcRoot: root, DevRoot: root, RootDir: root})
	if p.Model != "Raspberry Pi 4 Model B Rev 1.4" || p.Platform != "raspberry-pi-4" {
		t.Errorf("model %q, platform %q", p.Model, p.Platform)
	}
}

// TestTegraReleaseGarbled keeps the rest of a Jetson's profile when its
// release file is garbled, and reports the file.
func TestTegraReleaseGarbled(t *testing.T) {
	t.Parallel()
	etc := t.TempDir()
	write(t, etc, "nv_tegra_release", "corrupted by a half-finished OTA\n")
	opts := fixture("jetson-orin-nano", "linux-arm64-cuda")
	opts.EtcRoot = etc
	p := detect(t, opts)
	if p.Platform != "jetson-orin-nano" || p.L4T != "" || !hasNote(p.Errors, "board", `no release in "corrupted`) {
		t.Errorf("platform %q, l4t %q, errors %+v", p.Platform, p.L4T, p.Errors)
	}
	// JetPack 6 names its driver directory in the release file; without it
	// the standard paths still find libcuda.
	if !p.GPU.CUDA || p.Recommended.GPULayers.Value != AllLayers {
		t.Errorf("cuda %v, gpu_layers %d", p.GPU.CUDA, p.Recommended.GPULayers.Value)
	}
}

func TestParseTegraRelease(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, l4t, jetpack string
	}{
		{"# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64, DATE: Fri Sep 13 04:36:44 UTC 2024", "36.4.0", "6.1"},
		{"# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, DATE: Wed Jan  8 01:49:37 UTC 2025", "36.4.3", "6.2"},
		{"# R36 (release), REVISION: 3.0, GCID: 36191598, BOARD: generic, EABI: aarch64, DATE: Mon May  6 17:34:21 UTC 2024", "36.3.0", "6.0"},
		{"# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: Tue Aug  1 19:57:35 UTC 2023", "35.4.1", "5.1.2"},
		{"# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64, DATE: Sat Feb 19 17:05:08 UTC 2022", "32.7.1", "4.6.1"},
		{"# R99 (release), REVISION: 1.0, GCID: 1", "99.1.0", ""},
		{"garbage", "", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		l4t, jp := parseTegraRelease(tt.in)
		if l4t != tt.l4t || jp != tt.jetpack {
			t.Errorf("parseTegraRelease(%q) = %q, %q; want %q, %q", tt.in, l4t, jp, tt.l4t, tt.jetpack)
		}
	}
}

func TestPlatform(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, model string
		compatible  []string
		l4t, arch   string
		want        string
	}{
		{"orin nano super by SKU", "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super",
			[]string{"nvidia,p3768-0000+p3767-0005-super", "nvidia,p3767-0005", "nvidia,tegra234"}, "36.4.3", "aarch64", "jetson-orin-nano"},
		{"orin nx by SKU despite generic model", "NVIDIA Jetson Orin NX Engineering Reference Developer Kit",
			[]string{"nvidia,p3768-0000+p3767-0000", "nvidia,p3767-0000", "nvidia,tegra234"}, "", "aarch64", "jetson-orin-nx"},
		{"agx orin", "Jetson AGX Orin Developer Kit", []string{"nvidia,p3737-0000+p3701-0005", "nvidia,p3701-0005", "nvidia,tegra234"}, "", "aarch64", "jetson-agx-orin"},
		{"xavier nx", "NVIDIA Jetson Xavier NX Developer Kit", []string{"nvidia,p3509-0000+p3668-0001", "nvidia,tegra194"}, "", "aarch64", "jetson-xavier-nx"},
		{"jetson by model only", "NVIDIA Jetson Orin Nano Developer Kit", nil, "", "aarch64", "jetson-orin-nano"},
		{"unknown jetson", "Acme Carrier", []string{"acme,carrier", "nvidia,tegra234"}, "36.4.0", "aarch64", "jetson"},
		{"jetson from L4T alone", "", nil, "35.4.1", "aarch64", "jetson"},
		{"compute module 4", "Raspberry Pi Compute Module 4 Rev 1.0", []string{"raspberrypi,4-compute-module", "brcm,bcm2711"}, "", "aarch64", "raspberry-pi-4"},
		{"pi 400 by model", "Raspberry Pi 400 Rev 1.0", nil, "", "aarch64", "raspberry-pi-4"},
		{"pi 500 by model", "Raspberry Pi 500 Rev 1.0", nil, "", "aarch64", "raspberry-pi-5"},
		{"zero 2 w", "Raspberry Pi Zero 2 W Rev 1.0", []string{"raspberrypi,model-zero-2-w", "brcm,bcm2837"}, "", "aarch64", "raspberry-pi-3"},
		{"pi 2", "Raspberry Pi 2 Model B Rev 1.1", nil, "", "armv7l", "raspberry-pi"},
		{"rk3588", "Radxa ROCK 5 Model B", []string{"radxa,rock-5b", "rockchip,rk3588"}, "", "aarch64", "arm64"},
		{"32-bit arm", "", nil, "", "armv7l", "arm"},
		{"x86", "Supermicro SYS-6029P-TRT", nil, "", "x86_64", "x86_64"},
		{"nothing known", "", nil, "", "", "unknown"},
	}
	for _, tt := range tests {
		p := &Profile{Model: tt.model, L4T: tt.l4t, CPU: CPU{Arch: tt.arch}}
		if got := platform(p, tt.compatible); got != tt.want {
			t.Errorf("%s: platform = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestDMIModel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"vendor and product", map[string]string{"board_vendor": "AAEON", "product_name": "UP-APL01"}, "AAEON UP-APL01"},
		{"product names its vendor", map[string]string{"board_vendor": "Intel Corporation", "product_name": "Intel Corporation NUC7i5BNH"}, "Intel Corporation NUC7i5BNH"},
		{"placeholders skipped", map[string]string{"board_vendor": "ASRock", "product_name": "To Be Filled By O.E.M.", "board_name": "J4125-ITX"}, "ASRock J4125-ITX"},
		{"sys vendor fallback", map[string]string{"sys_vendor": "QEMU", "product_name": "Standard PC (Q35 + ICH9, 2009)"}, "QEMU Standard PC (Q35 + ICH9, 2009)"},
		{"nothing", map[string]string{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			for name, v := range tt.files {
				write(t, root, "class/dmi/id/"+name, v+"\n")
			}
			if got := (&env{sys: root}).dmiModel(); got != tt.want {
				t.Errorf("dmiModel = %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzParseTegraRelease(f *testing.F) {
	f.Add("# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic")
	f.Add("R1 (release), REVISION: 0.0")
	f.Fuzz(func(t *testing.T, s string) {
		l4t, jp := parseTegraRelease(s)
		if l4t == "" && jp != "" {
			t.Fatalf("JetPack %q without L4T", jp)
		}
	})
}
