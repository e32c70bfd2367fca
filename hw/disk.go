package hw

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/shirou/gopsutil/v4/disk"
)

// Disk kinds, as Disk.Kind reports them.
const (
	KindSDCard  = "sd-card"
	KindEMMC    = "emmc"
	KindNVMe    = "nvme"
	KindSSD     = "ssd"
	KindHDD     = "hdd"
	KindUnknown = "unknown"
)

// Disk describes the file system and block device holding the state
// directory, which takes ember's fsync-heavy queue and database writes.
type Disk struct {
	// Path is the state directory as given, cleaned and made absolute.
	Path string `json:"path"`
	// MountPoint and FSType describe the mount holding Path.
	MountPoint string `json:"mount_point,omitempty"`
	FSType     string `json:"fs_type,omitempty"`
	// Device is the mounted device ("/dev/mmcblk0p2"), BlockDevice the
	// whole disk under it ("mmcblk0"), device-mapper and RAID layers
	// followed down to the first member.
	Device      string `json:"device,omitempty"`
	BlockDevice string `json:"block_device,omitempty"`
	// Kind is "sd-card", "emmc", "nvme", "ssd", "hdd" or "unknown".
	Kind string `json:"kind"`
	// RemovableFlash is true for SD cards and other removable media (USB
	// sticks, card readers): flash that wears out under sustained fsync.
	RemovableFlash bool `json:"removable_flash"`
	// DeviceModel is the drive's or card's own name, when sysfs has one.
	DeviceModel string `json:"device_model,omitempty"`
	FreeBytes   uint64 `json:"free_bytes"`
	TotalBytes  uint64 `json:"total_bytes"`
}

// collectDisk finds the mount holding the state directory in the mount
// table (gopsutil, through the proc root), classifies its disk from
// /sys/block and measures free space with statfs.
func collectDisk(ctx context.Context, e *env, p *Profile) error {
	if e.stateDir == "" {
		return notPresent("state directory (none given)")
	}
	path, err := filepath.Abs(e.stateDir)
	if err != nil {
		return fmt.Errorf("state directory %q: %w", e.stateDir, err)
	}
	d := &Disk{Path: path, Kind: KindUnknown}
	p.Disk = d
	var errs []error

	// The directory may not exist before first start: measure the nearest
	// existing parent, which is where it will be created.
	existing := path
	for !exists(existing) && existing != filepath.Dir(existing) {
		existing = filepath.Dir(existing)
	}
	if d.TotalBytes, d.FreeBytes, err = e.statfs(ctx, existing); err != nil {
		errs = append(errs, fmt.Errorf("statfs %s: %w", existing, err))
	}

	parts, err := disk.PartitionsWithContext(e.gctx, true)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("reading mount table: %w", err))...)
	}
	var best *disk.PartitionStat
	for i := range parts {
		mp := parts[i].Mountpoint
		if !within(path, mp) {
			continue
		}
		// The longest mount point wins; among equals the later mount,
		// which is the one on top.
		if best == nil || len(mp) >= len(best.Mountpoint) {
			best = &parts[i]
		}
	}
	if best == nil {
		return errors.Join(append(errs, notPresent("mount holding %s", path))...)
	}
	d.MountPoint, d.FSType, d.Device = best.Mountpoint, best.Fstype, best.Device

	blk, err := e.wholeDisk(d.Device)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	d.BlockDevice = blk
	d.Kind, d.RemovableFlash, d.DeviceModel = e.classifyDisk(blk)
	return errors.Join(errs...)
}

// within reports whether path lies on the mount at mountPoint.
func within(path, mountPoint string) bool {
	if mountPoint == "/" {
		return true
	}
	return path == mountPoint || strings.HasPrefix(path, strings.TrimSuffix(mountPoint, "/")+"/")
}

var partitionRE = []*regexp.Regexp{
	regexp.MustCompile(`^((?:nvme\d+n\d+)|(?:mmcblk\d+)|(?:loop\d+)|(?:nbd\d+))p\d+$`),
	regexp.MustCompile(`^((?:sd|vd|xvd|hd)[a-z]+)\d+$`),
}

// wholeDisk maps a mounted device ("/dev/nvme0n1p2") to the disk in
// /sys/block holding it ("nvme0n1"), following device-mapper and md
// layers (LUKS, LVM, RAID) to their first member.
func (e *env) wholeDisk(device string) (string, error) {
	name, ok := strings.CutPrefix(device, "/dev/")
	if !ok {
		return "", notPresent("block device for %q (not a /dev node: overlay, tmpfs, network or pool file system)", device)
	}
	if strings.HasPrefix(name, "mapper/") {
		if mapped, err := filepath.EvalSymlinks(e.devPath(name)); err == nil {
			name = filepath.Base(mapped) // /dev/mapper/root -> ../dm-0
		}
	}
	name = filepath.Base(name)
	for range 8 { // bounded: a layer cycle in sysfs would be a kernel bug
		blk, err := e.diskOf(name)
		if err != nil {
			return "", err
		}
		members, _ := os.ReadDir(e.sysPath("block", blk, "slaves"))
		if len(members) == 0 {
			return blk, nil
		}
		name = members[0].Name()
	}
	return "", fmt.Errorf("block device %s: too many stacked layers", device)
}

// diskOf returns the /sys/block entry for a disk or partition name.
func (e *env) diskOf(name string) (string, error) {
	if exists(e.sysPath("block", name)) {
		return name, nil
	}
	// Real sysfs: /sys/class/block/<part> resolves into its disk's directory.
	if real, err := filepath.EvalSymlinks(e.sysPath("class", "block", name)); err == nil && exists(filepath.Join(real, "partition")) {
		return filepath.Base(filepath.Dir(real)), nil
	}
	for _, re := range partitionRE {
		if m := re.FindStringSubmatch(name); m != nil && exists(e.sysPath("block", m[1])) {
			return m[1], nil
		}
	}
	return "", notPresent("%s in %s", name, e.sysPath("block"))
}

// classifyDisk names the kind of a /sys/block disk. An MMC device says
// whether it is an SD card or eMMC in device/type; an eMMC also has boot
// partitions (mmcblk0boot0) an SD card lacks. Other disks are SSD or HDD by
// queue/rotational.
func (e *env) classifyDisk(blk string) (kind string, removableFlash bool, model string) {
	dir := e.sysPath("block", blk)
	removable, _ := readTrim(filepath.Join(dir, "removable"))
	for _, f := range []string{"device/model", "device/name"} {
		if s, err := readTrim(filepath.Join(dir, f)); err == nil && s != "" {
			model = s
			break
		}
	}
	switch {
	case strings.HasPrefix(blk, "nvme"):
		kind = KindNVMe
	case strings.HasPrefix(blk, "mmcblk"):
		typ, _ := readTrim(filepath.Join(dir, "device", "type"))
		switch {
		case typ == "SD":
			kind = KindSDCard
		case typ == "MMC", exists(e.sysPath("block", blk+"boot0")):
			kind = KindEMMC
		default:
			kind = KindUnknown
		}
	case strings.HasPrefix(blk, "loop"), strings.HasPrefix(blk, "zram"), strings.HasPrefix(blk, "ram"), strings.HasPrefix(blk, "nbd"):
		kind = KindUnknown
	default:
		rot, _ := readTrim(filepath.Join(dir, "queue", "rotational"))
		switch {
		case rot == "1" && (strings.HasPrefix(blk, "vd") || strings.HasPrefix(blk, "xvd")):
			// virtio and Xen disks claim to rotate unless the host says
			// otherwise: the backing store is unknown.
			kind = KindUnknown
		case rot == "1":
			kind = KindHDD
		case rot == "0":
			kind = KindSSD
		default:
			kind = KindUnknown
		}
	}
	// The kernel sets removable for removable media — USB sticks, card
	// readers — while USB hard disks report 0. A stick often also claims to
	// be rotational, so removability alone marks it as flash.
	removableFlash = kind == KindSDCard || removable == "1"
	return kind, removableFlash, model
}
