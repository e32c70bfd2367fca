package hw

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"sort"

	"github.com/shirou/gopsutil/v4/mem"
)

// collectMemory reads /proc/meminfo through gopsutil (which follows the
// proc root in e.gctx) and the zram devices in /sys/block.
//
// Swap comes from meminfo's SwapTotal, not gopsutil's SwapMemory: that one
// asks sysinfo(2), which always describes the running kernel, never the
// tree being read.
func collectMemory(_ context.Context, e *env, p *Profile) error {
	var errs []error
	vm, err := mem.VirtualMemoryWithContext(e.gctx)
	switch {
	case err == nil:
		p.MemoryBytes, p.AvailableBytes, p.SwapBytes = vm.Total, vm.Available, vm.SwapTotal
	case errors.Is(err, fs.ErrNotExist):
		errs = append(errs, notPresent("meminfo (%v)", err))
	default:
		errs = append(errs, err)
	}

	devs, _ := filepath.Glob(e.sysPath("block", "zram*"))
	sort.Strings(devs)
	for _, dev := range devs {
		size, err := readInt(filepath.Join(dev, "disksize"))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// An unconfigured zram device exists with disksize 0 once the
		// module is loaded; it compresses nothing.
		if size > 0 {
			p.ZRAM = true
			p.ZRAMBytes += uint64(size)
		}
	}
	return errors.Join(errs...)
}
