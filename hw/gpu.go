package hw

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// GPU describes the accelerators llama.cpp could offload to.
type GPU struct {
	// CUDA is true when an NVIDIA GPU, its device nodes and the driver
	// library (libcuda) are all present: what the CUDA backend needs.
	CUDA bool `json:"cuda"`
	// Tegra is true on a Jetson: the GPU is integrated and shares system RAM.
	Tegra bool `json:"tegra"`
	// Devices lists the GPUs found: a Jetson's integrated GPU, and PCI
	// display controllers from NVIDIA, AMD and Intel. BMC video (ASPEED,
	// Matrox) is left out: it cannot compute.
	Devices []GPUDevice `json:"devices,omitempty"`
	// DeviceNodes lists the GPU nodes under /dev: /dev/nvidia*, Jetson's
	// /dev/nvhost-*, /dev/nvgpu/…, /dev/nvmap, and DRM render nodes.
	DeviceNodes []string `json:"device_nodes,omitempty"`
	// CUDALibrary is the libcuda found in the standard driver paths.
	CUDALibrary string `json:"cuda_library,omitempty"`
	// VulkanICDs lists the installed Vulkan driver manifests (file names).
	VulkanICDs []string `json:"vulkan_icds,omitempty"`
	// Backends lists the llama.cpp GPU backend libraries in the library
	// directory: "cuda" (libggml-cuda.so), "vulkan", "hip", "sycl", "opencl".
	Backends []string `json:"backends,omitempty"`
}

// GPUDevice is one GPU.
type GPUDevice struct {
	Name string `json:"name"`
	// Vendor is "nvidia", "amd" or "intel".
	Vendor string `json:"vendor"`
	// PCI is the PCI address; empty for a Jetson's integrated GPU.
	PCI string `json:"pci,omitempty"`
	// Integrated is true when the GPU shares system RAM.
	Integrated bool `json:"integrated"`
}

// gpuNodes are the device-node patterns, relative to the dev root.
var gpuNodes = []string{
	"nvidia[0-9]*", "nvidiactl", // desktop/server driver
	"nvhost-ctrl-gpu", "nvhost-gpu", "nvgpu/igpu0/ctrl", "nvmap", // Jetson
	"dri/renderD*", // any DRM GPU (Vulkan through Mesa)
}

// cudaLibDirs are where NVIDIA's driver installs libcuda, relative to the
// root: JetPack 6 (nvidia/), JetPack 4-5 (tegra/), Debian/Ubuntu multiarch,
// RPM distributions, and WSL.
var cudaLibDirs = []string{
	"usr/lib/aarch64-linux-gnu/nvidia", "usr/lib/aarch64-linux-gnu/tegra", "usr/lib/aarch64-linux-gnu",
	"usr/lib/x86_64-linux-gnu", "usr/lib64", "usr/lib", "usr/lib/wsl/lib",
}

// vulkanICDDirs are the loader's manifest directories below the root; the
// /etc one is read below the etc root.
var vulkanICDDirs = []string{"usr/local/share/vulkan/icd.d", "usr/share/vulkan/icd.d"}

var (
	pciVendors  = map[string]string{"0x10de": "nvidia", "0x1002": "amd", "0x8086": "intel"}
	vendorNames = map[string]string{"nvidia": "NVIDIA", "amd": "AMD", "intel": "Intel"}
)

// collectGPU looks for a Jetson's integrated GPU (device tree, L4T), PCI
// GPUs (/sys/bus/pci), GPU device nodes, libcuda and Vulkan ICDs.
func collectGPU(_ context.Context, e *env, p *Profile) error {
	g := &p.GPU
	var errs []error
	for _, pat := range gpuNodes {
		matches, _ := filepath.Glob(e.devPath(pat))
		for _, m := range matches {
			rel, _ := filepath.Rel(e.dev, m)
			g.DeviceNodes = append(g.DeviceNodes, "/dev/"+filepath.ToSlash(rel))
		}
	}

	if isTegra(e.compatible) || p.L4T != "" {
		g.Tegra = true
		name := "NVIDIA Tegra integrated GPU"
		if p.SoC != "" {
			name += " (" + p.SoC + ")"
		}
		g.Devices = append(g.Devices, GPUDevice{Name: name, Vendor: "nvidia", Integrated: true})
	}
	pci, err := e.pciGPUs()
	if err != nil {
		errs = append(errs, err)
	}
	g.Devices = append(g.Devices, pci...)

	g.CUDALibrary = e.findLibCUDA()
	nvidiaNode := slices.ContainsFunc(g.DeviceNodes, func(n string) bool {
		discrete := strings.HasPrefix(n, "/dev/nvidia") && n != "/dev/nvidiactl"
		jetson := n == "/dev/nvmap" || n == "/dev/nvhost-ctrl-gpu" || strings.HasPrefix(n, "/dev/nvgpu/")
		return discrete || (g.Tegra && jetson)
	})
	hasNVIDIA := slices.ContainsFunc(g.Devices, func(d GPUDevice) bool { return d.Vendor == "nvidia" })
	g.CUDA = hasNVIDIA && nvidiaNode && g.CUDALibrary != ""

	g.VulkanICDs = e.vulkanICDs()
	if len(g.Devices) == 0 && len(g.DeviceNodes) == 0 {
		errs = append(errs, notPresent("GPU (no Tegra GPU, no NVIDIA/AMD/Intel PCI display controller, no GPU device nodes)"))
	}
	return errors.Join(errs...)
}

// pciGPUs lists display-class PCI devices (class 0x03xxxx) from vendors
// whose GPUs can compute.
func (e *env) pciGPUs() ([]GPUDevice, error) {
	devs, err := filepath.Glob(e.sysPath("bus", "pci", "devices", "*"))
	if err != nil {
		return nil, err
	}
	slices.Sort(devs)
	var out []GPUDevice
	for _, dir := range devs {
		class, err := readTrim(filepath.Join(dir, "class"))
		if err != nil || !strings.HasPrefix(class, "0x03") {
			continue
		}
		vendorID, _ := readTrim(filepath.Join(dir, "vendor"))
		vendor, ok := pciVendors[vendorID]
		if !ok {
			continue
		}
		deviceID, _ := readTrim(filepath.Join(dir, "device"))
		addr := filepath.Base(dir)
		out = append(out, GPUDevice{
			Name:   vendorNames[vendor] + " GPU " + strings.TrimPrefix(vendorID, "0x") + ":" + strings.TrimPrefix(deviceID, "0x"),
			Vendor: vendor,
			PCI:    addr,
			// Intel puts its integrated GPU at 00:02.0 on every chipset.
			Integrated: vendor == "intel" && strings.HasSuffix(addr, ":00:02.0"),
		})
	}
	return out, nil
}

// findLibCUDA returns the first libcuda in the driver paths, as a path on
// the machine being read (without the root prefix). JetPack 6 names its
// library directory in nv_tegra_release; it is searched first.
func (e *env) findLibCUDA() string {
	dirs := slices.Clone(cudaLibDirs)
	if f, err := os.Open(e.etcPath("nv_tegra_release")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "TARGET_USERSPACE_LIB_DIR_PATH="); ok {
				dirs = append([]string{strings.Trim(v, "/ ")}, dirs...)
			}
		}
		f.Close()
	}
	for _, dir := range dirs {
		matches, _ := filepath.Glob(e.rootPath(dir, "libcuda.so*"))
		slices.Sort(matches)
		if len(matches) > 0 {
			rel, _ := filepath.Rel(e.root, matches[0])
			return "/" + filepath.ToSlash(rel)
		}
	}
	return ""
}

// vulkanICDs lists the Vulkan driver manifests the loader would find.
func (e *env) vulkanICDs() []string {
	dirs := []string{e.etcPath("vulkan", "icd.d")}
	for _, d := range vulkanICDDirs {
		dirs = append(dirs, e.rootPath(d))
	}
	var icds []string
	for _, dir := range dirs {
		matches, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		for _, m := range matches {
			if name := filepath.Base(m); !slices.Contains(icds, name) {
				icds = append(icds, name)
			}
		}
	}
	slices.Sort(icds)
	return icds
}
