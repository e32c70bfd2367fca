package hw

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/shirou/gopsutil/v4/common"
	"github.com/shirou/gopsutil/v4/disk"
)

// Options says where Detect reads from. The zero value reads the running
// machine.
type Options struct {
	// ProcRoot is the procfs to read; empty means $HOST_PROC, else /proc.
	ProcRoot string
	// SysRoot is the sysfs to read; empty means $HOST_SYS, else /sys.
	SysRoot string
	// EtcRoot holds nv_tegra_release, ld.so.conf.d and Vulkan ICDs; empty
	// means $HOST_ETC, else /etc.
	EtcRoot string
	// DevRoot holds the GPU device nodes; empty means $HOST_DEV, else /dev.
	DevRoot string
	// RootDir is the file system root under which driver libraries
	// (usr/lib/.../libcuda.so) and Vulkan ICDs (usr/share/vulkan) are looked
	// up; empty means $HOST_ROOT, else /.
	RootDir string
	// StateDir is ember's state directory; Profile.Disk describes the disk
	// holding it. It need not exist yet: its nearest existing parent is
	// measured. Empty leaves Profile.Disk nil.
	StateDir string
	// LibDir is the llama.cpp library directory; which libggml-cpu-*.so
	// variants and GPU backends it holds drive Recommended.CPUVariant and
	// Recommended.GPULayers. Empty means none is installed yet.
	LibDir string
	// Logger receives one record per missing source (debug) and per broken
	// source (warn); nil discards them.
	Logger *slog.Logger

	// statfs measures the file system holding path; nil uses statfs(2).
	// Tests set it so fixture profiles do not depend on the host's disks.
	statfs func(ctx context.Context, path string) (total, free uint64, err error)
}

// Profile is what Detect found and what it recommends. Its JSON form is
// printed by `emberd hw -o json` and is a public contract.
type Profile struct {
	// Platform classifies the board: "jetson-orin-nano", "jetson-agx-orin",
	// "jetson-orin-nx", "jetson-xavier-nx", … ("jetson" when the model is
	// unknown), "raspberry-pi-5", "raspberry-pi-4", or the generic "arm64",
	// "arm" (32-bit) and "x86_64".
	Platform string `json:"platform"`
	// Model is the board's own name: the device-tree model, else the DMI
	// board vendor and product name.
	Model string `json:"model,omitempty"`
	// SoC is the system-on-chip from the device-tree compatible list, such
	// as "tegra234", "bcm2712" or "rk3588".
	SoC string `json:"soc,omitempty"`
	// L4T is the Jetson Linux release from /etc/nv_tegra_release ("36.4.0").
	L4T string `json:"l4t,omitempty"`
	// JetPack is the JetPack release that ships L4T ("6.1"), when known.
	JetPack string `json:"jetpack,omitempty"`
	// Userland is the Debian architecture of the installed OS libraries
	// ("arm64", "armhf", "amd64", "i386"), from /etc/ld.so.conf.d; a 32-bit
	// userland on a 64-bit CPU is how a Raspberry Pi usually ends up 32-bit.
	Userland string `json:"userland,omitempty"`

	// CPU describes the processor.
	CPU CPU `json:"cpu"`

	// MemoryBytes is MemTotal: the RAM the kernel manages, a little under
	// the nominal size.
	MemoryBytes uint64 `json:"memory_bytes"`
	// AvailableBytes is MemAvailable at the time of detection.
	AvailableBytes uint64 `json:"available_bytes"`
	// SwapBytes is the total swap, zram included.
	SwapBytes uint64 `json:"swap_bytes"`
	// ZRAM is true when compressed RAM devices (/sys/block/zram*) exist.
	ZRAM bool `json:"zram"`
	// ZRAMBytes is the summed disksize of those devices.
	ZRAMBytes uint64 `json:"zram_bytes,omitempty"`

	// Disk describes the disk holding Options.StateDir; nil when no state
	// directory was given.
	Disk *Disk `json:"disk,omitempty"`

	// Temperatures lists the thermal zones (or, without any, the hwmon
	// sensors) in zone order.
	Temperatures []Temperature `json:"temperatures"`

	// GPU describes the accelerators and the GPU backends installed.
	GPU GPU `json:"gpu"`

	// Recommended holds the derived inference defaults and warnings.
	Recommended Recommendations `json:"recommended"`

	// Missing lists sources this machine does not have (ErrNotPresent):
	// expected on some hardware, reported so an operator can tell "no
	// sensor" from "sensor reads 0".
	Missing []Note `json:"missing,omitempty"`
	// Errors lists sources that exist but could not be read or parsed.
	Errors []Note `json:"errors,omitempty"`
}

// Note is one source's missing or failed read.
type Note struct {
	Source string `json:"source"`
	Detail string `json:"detail"`
}

// env is one Detect call's resolved roots and shared, already-read inputs.
type env struct {
	proc, sys, etc, dev, root string
	stateDir, libDir          string

	// gctx carries the roots to gopsutil in its context environment map.
	gctx   context.Context
	statfs func(ctx context.Context, path string) (total, free uint64, err error)

	// cpuinfo is /proc/cpuinfo parsed once; nil until read, cpuinfoErr
	// keeps a failed read's error.
	cpuinfo    *cpuinfo
	cpuinfoErr error
	// compatible is the device-tree compatible list, most specific first.
	compatible []string
}

// collector reads one hardware source into the profile. It returns nil, an
// error wrapping ErrNotPresent, another error, or several joined: partial
// results it managed to read stay in the profile either way. Its name is
// the Note.Source of what it reports: "board", "cpu", "memory", "disk",
// "thermal", "gpu" or "libdir".
type collector struct {
	name string
	fn   func(ctx context.Context, e *env, p *Profile) error
}

// collectors run in this order: board identity first, since the GPU
// collector needs the device tree's SoC, and the library scan last.
var collectors = []collector{
	{"board", collectBoard},
	{"cpu", collectCPU},
	{"memory", collectMemory},
	{"disk", collectDisk},
	{"thermal", collectThermal},
	{"gpu", collectGPU},
	{"libdir", collectLibDir},
}

// Detect reads the hardware profile through opts' roots and derives the
// recommended inference defaults. It fails only when the proc or sys root
// is unusable (ErrBadRoot) or ctx ends; a missing or unreadable source is
// recorded in Profile.Missing or Profile.Errors and the rest still run.
func Detect(ctx context.Context, opts Options) (*Profile, error) {
	e, err := newEnv(ctx, opts)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Profile{Temperatures: []Temperature{}}
	for _, c := range collectors {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("detecting hardware: %w", err)
		}
		record(c.name, c.fn(ctx, e, p), &p.Missing, &p.Errors, log)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("detecting hardware: %w", err)
	}
	p.Platform = platform(p, e.compatible)
	p.Recommended = Recommend(p)
	return p, nil
}

// record files each leaf of a source's error as a Note: an absent source
// (ErrNotPresent) in missing, any other failure in broken. A non-nil log
// gets a debug record per absent source and a warning per broken one.
func record(source string, err error, missing, broken *[]Note, log *slog.Logger) {
	for _, err := range flatten(err) {
		note := Note{Source: source, Detail: err.Error()}
		if errors.Is(err, ErrNotPresent) {
			*missing = append(*missing, note)
			if log != nil {
				log.Debug("hardware source not present", "source", source, "detail", note.Detail)
			}
			continue
		}
		*broken = append(*broken, note)
		if log != nil {
			log.Warn("hardware source unreadable", "source", source, "err", err)
		}
	}
}

// flatten returns the leaf errors of a possibly joined error.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// newEnv resolves the roots: an explicit option, else the HOST_* variable
// gopsutil honours, else the usual path.
func newEnv(ctx context.Context, opts Options) (*env, error) {
	e := &env{
		proc:     root(opts.ProcRoot, "HOST_PROC", "/proc"),
		sys:      root(opts.SysRoot, "HOST_SYS", "/sys"),
		etc:      root(opts.EtcRoot, "HOST_ETC", "/etc"),
		dev:      root(opts.DevRoot, "HOST_DEV", "/dev"),
		root:     root(opts.RootDir, "HOST_ROOT", "/"),
		stateDir: opts.StateDir,
		libDir:   opts.LibDir,
		statfs:   opts.statfs,
	}
	for _, r := range []struct{ name, path string }{{"proc", e.proc}, {"sys", e.sys}} {
		fi, err := os.Stat(r.path)
		if err != nil {
			return nil, fmt.Errorf("%s root %q: %w: %w", r.name, r.path, ErrBadRoot, err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("%s root %q is not a directory: %w", r.name, r.path, ErrBadRoot)
		}
	}
	if e.statfs == nil {
		e.statfs = func(ctx context.Context, path string) (uint64, uint64, error) {
			u, err := disk.UsageWithContext(ctx, path)
			if err != nil {
				return 0, 0, err
			}
			return u.Total, u.Free, nil
		}
	}

	// Hand gopsutil the same roots, keeping any other keys the caller put
	// in ctx. Its mount table is pinned to this proc root too: left alone,
	// a HOST_PROC_MOUNTINFO in the process environment would win.
	envMap := common.EnvMap{}
	if m, ok := ctx.Value(common.EnvKey).(common.EnvMap); ok {
		for k, v := range m {
			envMap[k] = v
		}
	}
	envMap[common.HostProcEnvKey] = e.proc
	envMap[common.HostSysEnvKey] = e.sys
	envMap[common.HostEtcEnvKey] = e.etc
	envMap[common.HostDevEnvKey] = e.dev
	envMap[common.HostRootEnvKey] = e.root
	// The state directory lives in this process's mount namespace, so its
	// own table comes first; pid 1's is the fallback (hidepid, odd procfs).
	if opts.ProcRoot != "" || os.Getenv("HOST_PROC_MOUNTINFO") == "" {
		mi := filepath.Join(e.proc, "self", "mountinfo")
		if f, err := os.Open(mi); err == nil {
			f.Close()
		} else {
			mi = filepath.Join(e.proc, "1", "mountinfo")
		}
		envMap[common.HostProcMountinfo] = mi
	}
	e.gctx = context.WithValue(ctx, common.EnvKey, envMap)
	return e, nil
}

func root(explicit, envVar, dflt string) string {
	if explicit != "" {
		return explicit
	}
	if v := os.Getenv(envVar); v != "" {
		return v
	}
	return dflt
}

// under joins elem below root.
func under(root string, elem ...string) string {
	return filepath.Join(append([]string{root}, elem...)...)
}

func (e *env) procPath(elem ...string) string { return under(e.proc, elem...) }
func (e *env) sysPath(elem ...string) string  { return under(e.sys, elem...) }
func (e *env) etcPath(elem ...string) string  { return under(e.etc, elem...) }
func (e *env) devPath(elem ...string) string  { return under(e.dev, elem...) }
func (e *env) rootPath(elem ...string) string { return under(e.root, elem...) }
