package hw

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/ember-edge/ember/internal/bytesize"
)

// WriteText prints p for people: aligned key/value lines, then each
// recommended value with its reason, then warnings and what was missing.
// The layout may change between releases; scripts should use the JSON form.
func WriteText(w io.Writer, p *Profile) error {
	for _, section := range []func(io.Writer, *Profile) error{writeFacts, writeRecommended, writeLists} {
		if err := section(w, p); err != nil {
			return fmt.Errorf("writing hardware profile: %w", err)
		}
	}
	return nil
}

// facts is the key/value table of what was detected.
type facts struct{ tw *tabwriter.Writer }

func (f facts) line(key, format string, args ...any) {
	fmt.Fprintf(f.tw, "%s\t%s\n", key, fmt.Sprintf(format, args...))
}

// writeFacts writes what was detected as one aligned key/value table.
func writeFacts(w io.Writer, p *Profile) error {
	f := facts{tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	f.board(p)
	f.cpu(p.CPU)
	f.memory(p)
	if p.Disk != nil {
		f.disk(p.Disk)
	}
	f.temperatures(p.Temperatures)
	f.gpu(p.GPU)
	return f.tw.Flush()
}

func (f facts) board(p *Profile) {
	f.line("platform", "%s", p.Platform)
	f.line("model", "%s", orUnknown(p.Model))
	if p.SoC != "" {
		f.line("soc", "%s", p.SoC)
	}
	if p.L4T != "" {
		f.line("l4t", "%s (JetPack %s)", p.L4T, orUnknown(p.JetPack))
	}
	if p.Userland != "" {
		f.line("userland", "%s", p.Userland)
	}
}

func (f facts) cpu(c CPU) {
	cpu := fmt.Sprintf("%s (%s)", orUnknown(c.ModelName), orUnknown(c.Arch))
	if c.MaxFrequencyMHz > 0 {
		cpu += fmt.Sprintf(", %.0f MHz max", c.MaxFrequencyMHz)
	}
	f.line("cpu", "%s", cpu)
	f.line("cores", "%d physical, %d logical, %d performance", c.PhysicalCores, c.LogicalCores, c.PerformanceCores)
	f.line("flags", "%s", orNone(strings.Join(c.Flags, " ")))
	f.line("cpu variants", "%s", orNone(strings.Join(c.GGMLVariants, " ")))
}

func (f facts) memory(p *Profile) {
	f.line("memory", "%s total, %s available", bytesize.Size(p.MemoryBytes), bytesize.Size(p.AvailableBytes))
	swap := "none"
	if p.SwapBytes > 0 {
		swap = bytesize.Size(p.SwapBytes).String()
	}
	if p.ZRAM {
		swap += fmt.Sprintf(" (zram devices %s)", bytesize.Size(p.ZRAMBytes))
	}
	f.line("swap", "%s", swap)
}

func (f facts) disk(d *Disk) {
	where := d.Path
	if d.MountPoint != "" {
		where += fmt.Sprintf(" on %s (%s, %s)", d.MountPoint, orUnknown(d.FSType), orUnknown(d.Device))
	}
	f.line("state disk", "%s", where)
	kind := d.Kind
	if d.BlockDevice != "" {
		kind = d.BlockDevice + ": " + kind
	}
	if d.DeviceModel != "" {
		kind += " " + strconv.Quote(d.DeviceModel)
	}
	if d.RemovableFlash {
		kind += ", removable flash"
	}
	f.line("", "%s, %s free of %s", kind, bytesize.Size(d.FreeBytes), bytesize.Size(d.TotalBytes))
}

func (f facts) temperatures(ts []Temperature) {
	if len(ts) == 0 {
		f.line("temperature", "none")
	}
	for i, t := range ts {
		key := ""
		if i == 0 {
			key = "temperature"
		}
		f.line(key, "%-14s %-22s %5.1f °C", t.Zone, t.Type, t.Celsius)
	}
}

func (f facts) gpu(g GPU) {
	var gpu []string
	switch {
	case g.CUDA && g.Tegra:
		gpu = append(gpu, "CUDA (Jetson integrated)")
	case g.CUDA:
		gpu = append(gpu, "CUDA")
	}
	for _, d := range g.Devices {
		name := d.Name
		if d.PCI != "" {
			name += " at " + d.PCI
		}
		gpu = append(gpu, name)
	}
	f.line("gpu", "%s", orNone(strings.Join(gpu, "; ")))
	if g.CUDALibrary != "" {
		f.line("", "libcuda %s", g.CUDALibrary)
	}
	if len(g.VulkanICDs) > 0 {
		f.line("", "vulkan %s", strings.Join(g.VulkanICDs, " "))
	}
	f.line("gpu backends", "%s", orNone(strings.Join(g.Backends, " ")))
}

// writeRecommended writes the recommendations as their own table: their
// short keys and values need not line up with the facts above.
func writeRecommended(w io.Writer, p *Profile) error {
	if _, err := io.WriteString(w, "\nrecommended\n"); err != nil {
		return err
	}
	r := p.Recommended
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	rec := func(key string, value any, reason string) {
		fmt.Fprintf(tw, "  %s\t%v\t%s\n", key, value, reason)
	}
	rec("threads", r.Threads.Value, r.Threads.Reason)
	rec("context", r.Context.Value, r.Context.Reason)
	rec("parallel", r.Parallel.Value, r.Parallel.Reason)
	rec("gpu_layers", r.GPULayers.Value, r.GPULayers.Reason)
	rec("mmap", r.MMap.Value, r.MMap.Reason)
	rec("mlock", r.MLock.Value, r.MLock.Reason)
	rec("cpu_variant", orNone(r.CPUVariant.Value), r.CPUVariant.Reason)
	return tw.Flush()
}

// writeLists writes warnings, missing and failed sources as bullet lists,
// outside any table: long lines would stretch its columns.
func writeLists(w io.Writer, p *Profile) error {
	var b strings.Builder
	list := func(title string, items []string) {
		if len(items) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n%s\n", title)
		for _, it := range items {
			fmt.Fprintf(&b, "  - %s\n", it)
		}
	}
	list("warnings", p.Recommended.Warnings)
	list("missing", notes(p.Missing))
	list("errors", notes(p.Errors))
	_, err := io.WriteString(w, b.String())
	return err
}

func notes(ns []Note) []string {
	out := make([]string, 0, len(ns))
	for _, n := range ns {
		out = append(out, n.Source+": "+n.Detail)
	}
	return out
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
