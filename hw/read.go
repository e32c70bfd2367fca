package hw

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// readTrim reads a small procfs, sysfs or device-tree file and returns its
// content without surrounding whitespace or the NUL terminator device-tree
// strings carry. A missing file is ErrNotPresent.
func readTrim(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fileErr(path, err)
	}
	return strings.TrimSpace(strings.Trim(string(b), "\x00")), nil
}

// readInt reads a file holding one decimal integer.
func readInt(path string) (int64, error) {
	s, err := readTrim(path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fileErr(path, err)
	}
	return n, nil
}

// exists reports whether path exists; errors other than non-existence count
// as existing, since something is there.
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil || !os.IsNotExist(err)
}

// nulList splits a device-tree string list ("a\x00b\x00") into its items.
func nulList(b []byte) []string {
	var out []string
	for _, s := range strings.Split(string(b), "\x00") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// maxCPUs bounds CPU numbers: the kernel's NR_CPUS tops out at 8192.
const maxCPUs = 8192

// parseCPUList parses the kernel's CPU list format ("0-3,5,7-8") into the
// CPU numbers it names, in order.
func parseCPUList(s string) ([]int, error) {
	var cpus []int
	for _, part := range strings.Split(strings.TrimSpace(s), ",") {
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, err
			}
		}
		if a < 0 || b < a || b >= maxCPUs {
			return nil, fmt.Errorf("CPU range %q out of bounds", part)
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}
