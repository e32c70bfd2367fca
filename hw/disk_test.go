package hw

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// diskTree builds a /sys/block and /dev with one of each kind of disk.
func diskTree(t *testing.T) *env {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"sys/block/sda/queue/rotational":  "1",
		"sys/block/sda/removable":         "0",
		"sys/block/sda/device/model":      "ST4000NM0035-1V4",
		"sys/block/sdb/queue/rotational":  "0",
		"sys/block/sdb/removable":         "0",
		"sys/block/sdc/queue/rotational":  "1", // USB sticks claim to spin
		"sys/block/sdc/removable":         "1",
		"sys/block/sdc/device/model":      "Cruzer Blade",
		"sys/block/mmcblk0/device/type":   "SD",
		"sys/block/mmcblk0/device/name":   "SC32G",
		"sys/block/mmcblk0/removable":     "0",
		"sys/block/mmcblk1/removable":     "0", // no device/type: eMMC known by its boot partitions
		"sys/block/mmcblk1boot0/size":     "8192",
		"sys/block/mmcblk2/device/type":   "SDIO",
		"sys/block/nvme0n1/device/model":  "Samsung SSD 980 500GB",
		"sys/block/nvme0n1/removable":     "0",
		"sys/block/dm-0/slaves/nvme0n1p3": "",
		"sys/block/md0/slaves/sda1":       "",
		"sys/block/loop0/removable":       "0",
		"sys/block/vda/queue/rotational":  "1",
		"sys/block/vdb/queue/rotational":  "0",
	}
	for rel, content := range files {
		write(t, root, rel, content)
	}
	if err := os.MkdirAll(filepath.Join(root, "dev", "mapper"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../dm-0", filepath.Join(root, "dev", "mapper", "cryptroot")); err != nil {
		t.Fatal(err)
	}
	write(t, root, "dev/dm-0", "")
	return &env{sys: filepath.Join(root, "sys"), dev: filepath.Join(root, "dev")}
}

func TestClassifyDisk(t *testing.T) {
	t.Parallel()
	e := diskTree(t)
	tests := []struct {
		device, disk, kind string
		removable          bool
		model              string
	}{
		{"/dev/sda2", "sda", KindHDD, false, "ST4000NM0035-1V4"},
		{"/dev/sdb", "sdb", KindSSD, false, ""},
		// A USB stick reports rotational=1; what matters is the removable flag.
		{"/dev/sdc1", "sdc", KindHDD, true, "Cruzer Blade"},
		{"/dev/mmcblk0p2", "mmcblk0", KindSDCard, true, "SC32G"},
		{"/dev/mmcblk1p1", "mmcblk1", KindEMMC, false, ""},
		{"/dev/mmcblk2p1", "mmcblk2", KindUnknown, false, ""},
		{"/dev/nvme0n1p2", "nvme0n1", KindNVMe, false, "Samsung SSD 980 500GB"},
		{"/dev/dm-0", "nvme0n1", KindNVMe, false, "Samsung SSD 980 500GB"},
		{"/dev/mapper/cryptroot", "nvme0n1", KindNVMe, false, "Samsung SSD 980 500GB"},
		{"/dev/md0", "sda", KindHDD, false, "ST4000NM0035-1V4"},
		{"/dev/loop0", "loop0", KindUnknown, false, ""},
		{"/dev/vda1", "vda", KindUnknown, false, ""},
		{"/dev/vdb", "vdb", KindSSD, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.device, func(t *testing.T) {
			t.Parallel()
			disk, err := e.wholeDisk(tt.device)
			if err != nil {
				t.Fatal(err)
			}
			kind, removable, model := e.classifyDisk(disk)
			if disk != tt.disk || kind != tt.kind || removable != tt.removable || model != tt.model {
				t.Errorf("got %s %s removable=%v %q, want %s %s removable=%v %q",
					disk, kind, removable, model, tt.disk, tt.kind, tt.removable, tt.model)
			}
		})
	}
	for _, dev := range []string{"overlay", "tmpfs", "/dev/sdz1"} {
		if _, err := e.wholeDisk(dev); !errors.Is(err, ErrNotPresent) {
			t.Errorf("wholeDisk(%q) = %v, want ErrNotPresent", dev, err)
		}
	}
}

// TestDiskMount checks that the longest mount point holding the state
// directory wins, component by component.
func TestDiskMount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		stateDir, mount, disk, kind string
	}{
		{"/data/ember", "/data", "sdb", KindHDD},
		{"/data", "/data", "sdb", KindHDD},
		{"/database/ember", "/", "sda", KindSSD},
		{"/var/lib/ember", "/", "sda", KindSSD},
		{"/boot/efi/ember", "/boot/efi", "sda", KindSSD},
	}
	for _, tt := range tests {
		t.Run(tt.stateDir, func(t *testing.T) {
			t.Parallel()
			opts := fixture("xeon-silver-4216", "")
			opts.StateDir = tt.stateDir
			d := detect(t, opts).Disk
			if d.MountPoint != tt.mount || d.BlockDevice != tt.disk || d.Kind != tt.kind {
				t.Errorf("disk = %+v, want mount %s on %s (%s)", d, tt.mount, tt.disk, tt.kind)
			}
		})
	}
}

func TestDiskLowSpaceWarning(t *testing.T) {
	t.Parallel()
	opts := fixture("raspberry-pi-5", "linux-arm64")
	opts.statfs = fakeStatfs(64*gib, 512<<20)
	p := detect(t, opts)
	if !strings.Contains(strings.Join(p.Recommended.Warnings, "\n"), "only 512.0 MiB free on /") {
		t.Errorf("warnings = %q, want low space", p.Recommended.Warnings)
	}

	opts.statfs = func(context.Context, string) (uint64, uint64, error) { return 0, 0, errors.New("statfs failed") }
	p = detect(t, opts)
	if !hasNote(p.Errors, "disk", "statfs failed") || p.Disk.Kind != KindNVMe {
		t.Errorf("disk %+v, errors %+v: a failed statfs must not hide the disk's kind", p.Disk, p.Errors)
	}
}

func TestDiskNoStateDir(t *testing.T) {
	t.Parallel()
	opts := fixture("raspberry-pi-5", "linux-arm64")
	opts.StateDir = ""
	p := detect(t, opts)
	if p.Disk != nil || !hasNote(p.Missing, "disk", "state directory") {
		t.Errorf("disk %+v, missing %+v", p.Disk, p.Missing)
	}
}
