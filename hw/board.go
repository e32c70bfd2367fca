package hw

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// collectBoard identifies the board: the device-tree model and compatible
// list on ARM boards, DMI on x86, the Jetson Linux release, and the
// userland's architecture.
func collectBoard(_ context.Context, e *env, p *Profile) error {
	var errs []error

	model, err := e.deviceTree("model")
	switch {
	case err == nil:
		if l := nulList(model); len(l) > 0 {
			p.Model = l[0]
		}
	case !errors.Is(err, ErrNotPresent):
		errs = append(errs, err)
	}
	if compat, err := e.deviceTree("compatible"); err == nil {
		e.compatible = nulList(compat)
		if n := len(e.compatible); n > 0 {
			// The list runs from board to SoC: the last entry names the chip.
			_, p.SoC, _ = strings.Cut(e.compatible[n-1], ",")
		}
	} else if !errors.Is(err, ErrNotPresent) {
		errs = append(errs, err)
	}
	if p.Model == "" {
		p.Model = e.dmiModel()
	}
	if p.Model == "" {
		// A Raspberry Pi kernel also names the board in /proc/cpuinfo.
		if ci, err := e.cpuInfo(); err == nil {
			p.Model = ci.extra["Model"]
		}
	}
	if p.Model == "" {
		errs = append(errs, notPresent("board model (no device-tree model, DMI product name or cpuinfo Model)"))
	}

	relPath := e.etcPath("nv_tegra_release")
	rel, err := readTrim(relPath)
	switch {
	case err == nil:
		p.L4T, p.JetPack = parseTegraRelease(rel)
		if p.L4T == "" {
			errs = append(errs, fmt.Errorf("parsing %s: no release in %q", relPath, firstLine(rel)))
		} else if p.JetPack == "" {
			errs = append(errs, notPresent("JetPack release for L4T %s (not in ember's table)", p.L4T))
		}
	case errors.Is(err, ErrNotPresent):
		if isTegra(e.compatible) {
			errs = append(errs, err)
		}
	default:
		errs = append(errs, err)
	}

	p.Userland, err = e.userland()
	if err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// deviceTree reads a device-tree property. /proc/device-tree is a symlink
// to /sys/firmware/devicetree/base on real systems; either may be all a
// container or fixture has.
func (e *env) deviceTree(prop string) ([]byte, error) {
	b, err := os.ReadFile(e.procPath("device-tree", prop))
	if err == nil {
		return b, nil
	}
	alt := e.sysPath("firmware", "devicetree", "base", prop)
	if b, err2 := os.ReadFile(alt); err2 == nil {
		return b, nil
	}
	return nil, fileErr(e.procPath("device-tree", prop), err)
}

// dmiPlaceholders are the values firmware vendors leave in unset DMI fields.
var dmiPlaceholders = map[string]bool{
	"": true, "to be filled by o.e.m.": true, "default string": true, "system product name": true,
	"system manufacturer": true, "not applicable": true, "none": true, "unknown": true, "0123456789": true,
}

// dmiModel names an x86 (or UEFI ARM) box from DMI: board vendor and
// product name, falling back to the system vendor and board name.
func (e *env) dmiModel() string {
	get := func(name string) string {
		s, err := readTrim(e.sysPath("class", "dmi", "id", name))
		if err != nil || dmiPlaceholders[strings.ToLower(s)] {
			return ""
		}
		return s
	}
	vendor := get("board_vendor")
	if vendor == "" {
		vendor = get("sys_vendor")
	}
	product := get("product_name")
	if product == "" {
		product = get("board_name")
	}
	switch {
	case product == "":
		return vendor
	case vendor == "" || strings.HasPrefix(strings.ToLower(product), strings.ToLower(vendor)):
		return product
	}
	return vendor + " " + product
}

var tegraReleaseRE = regexp.MustCompile(`R(\d+)\s*\(release\),\s*REVISION:\s*(\d+)\.(\d+)`)

// parseTegraRelease turns /etc/nv_tegra_release's first line
// ("# R36 (release), REVISION: 4.0, GCID: …") into the L4T release
// ("36.4.0") and the JetPack release that shipped it, when known.
func parseTegraRelease(s string) (l4t, jetpack string) {
	m := tegraReleaseRE.FindStringSubmatch(s)
	if m == nil {
		return "", ""
	}
	l4t = m[1] + "." + m[2] + "." + m[3]
	return l4t, jetpackByL4T[l4t]
}

// jetpackByL4T maps Jetson Linux (L4T) releases to the JetPack release that
// bundles them, from NVIDIA's JetPack archive. Unknown releases leave
// Profile.JetPack empty rather than guessing.
var jetpackByL4T = map[string]string{
	"32.4.3": "4.4", "32.4.4": "4.4.1", "32.5.0": "4.5", "32.5.1": "4.5.1", "32.5.2": "4.5.1",
	"32.6.1": "4.6", "32.7.1": "4.6.1", "32.7.2": "4.6.2", "32.7.3": "4.6.3", "32.7.4": "4.6.4",
	"32.7.5": "4.6.5", "32.7.6": "4.6.6",
	"35.1.0": "5.0.2", "35.2.1": "5.1", "35.3.1": "5.1.1", "35.4.1": "5.1.2", "35.5.0": "5.1.3",
	"35.6.0": "5.1.4", "35.6.1": "5.1.5",
	"36.2.0": "6.0 DP", "36.3.0": "6.0", "36.4.0": "6.1", "36.4.3": "6.2", "36.4.4": "6.2.1",
	"38.2.0": "7.0",
}

// userland reads the Debian multiarch triplets in /etc/ld.so.conf.d to tell
// which architecture the OS libraries are built for. Foreign triplets are
// often installed beside the native one (arm64 libraries on an x86-64
// build host, armhf ones on a Pi's arm64 OS), so the kernel's own family
// is preferred, 64-bit before 32-bit; a lone 32-bit triplet of that family
// is the 32-bit OS on a 64-bit kernel that userland exists to spot.
func (e *env) userland() (string, error) {
	dir := e.etcPath("ld.so.conf.d")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fileErr(dir, err)
	}
	found := map[string]bool{}
	for _, ent := range entries {
		found[strings.TrimSuffix(ent.Name(), ".conf")] = true
	}
	type triplet struct{ triplet, arch, family string }
	all := []triplet{
		{"aarch64-linux-gnu", "arm64", "arm"}, {"x86_64-linux-gnu", "amd64", "x86"},
		{"arm-linux-gnueabihf", "armhf", "arm"}, {"i386-linux-gnu", "i386", "x86"}, {"i686-linux-gnu", "i386", "x86"},
	}
	family := ""
	if ci, err := e.cpuInfo(); err == nil {
		switch a := e.kernelArch(ci); {
		case strings.HasPrefix(a, "arm"), a == "aarch64":
			family = "arm"
		case a == "x86_64", strings.HasPrefix(a, "i") && strings.HasSuffix(a, "86"):
			family = "x86"
		}
	}
	for _, native := range []bool{true, false} {
		for _, t := range all {
			if found[t.triplet] && (!native || t.family == family) {
				return t.arch, nil
			}
		}
	}
	return "", notPresent("userland architecture (no Debian multiarch entry in %s)", dir)
}

func isTegra(compat []string) bool {
	for _, c := range compat {
		if strings.HasPrefix(c, "nvidia,tegra") {
			return true
		}
	}
	return false
}

// jetsonSKUs maps module part numbers in the device-tree compatible list to
// platforms; they are exact where the model string varies between JetPack
// releases ("… Developer Kit", "… Engineering Reference Developer Kit Super").
var jetsonSKUs = []struct{ part, platform string }{
	{"p3767-0000", "jetson-orin-nx"}, {"p3767-0001", "jetson-orin-nx"},
	{"p3767-0003", "jetson-orin-nano"}, {"p3767-0004", "jetson-orin-nano"}, {"p3767-0005", "jetson-orin-nano"},
	{"p3701-", "jetson-agx-orin"},
	{"p3668-", "jetson-xavier-nx"},
	{"p2888-", "jetson-agx-xavier"},
	{"p3448-", "jetson-nano"}, {"p3450-", "jetson-nano"},
	{"p3310-", "jetson-tx2"}, {"p3489-", "jetson-tx2"}, {"p3636-", "jetson-tx2"},
}

// jetsonModels classifies by model string when no known part number is in
// the compatible list; more specific phrases come first.
var jetsonModels = []struct{ phrase, platform string }{
	{"orin nano", "jetson-orin-nano"}, {"orin nx", "jetson-orin-nx"}, {"agx orin", "jetson-agx-orin"},
	{"xavier nx", "jetson-xavier-nx"}, {"agx xavier", "jetson-agx-xavier"}, {"agx thor", "jetson-agx-thor"},
	{"jetson nano", "jetson-nano"}, {"tx2", "jetson-tx2"},
}

// platform classifies the board from what the collectors found.
func platform(p *Profile, compat []string) string {
	model := strings.ToLower(p.Model)
	if isTegra(compat) || p.L4T != "" || strings.Contains(model, "jetson") {
		for _, c := range compat {
			for _, s := range jetsonSKUs {
				if strings.Contains(c, s.part) {
					return s.platform
				}
			}
		}
		for _, m := range jetsonModels {
			if strings.Contains(model, m.phrase) {
				return m.platform
			}
		}
		return "jetson"
	}
	if pi := raspberryPi(model, compat); pi != "" {
		return pi
	}
	switch p.CPU.Arch {
	case "aarch64":
		return "arm64"
	case "x86_64":
		return "x86_64"
	case "i686", "i386":
		return "x86"
	case "":
		return "unknown"
	}
	if strings.HasPrefix(p.CPU.Arch, "arm") {
		return "arm"
	}
	return p.CPU.Arch
}

// raspberryPi classifies Raspberry Pi boards by SoC, which also covers the
// Compute Modules and the keyboard models (CM4 and Pi 400 are Pi 4 class).
func raspberryPi(model string, compat []string) string {
	for _, c := range compat {
		switch c {
		case "brcm,bcm2712":
			return "raspberry-pi-5"
		case "brcm,bcm2711":
			return "raspberry-pi-4"
		case "brcm,bcm2837", "brcm,bcm2710":
			return "raspberry-pi-3"
		}
	}
	switch {
	case !strings.HasPrefix(model, "raspberry pi"):
		return ""
	case strings.HasPrefix(model, "raspberry pi 5"), strings.HasPrefix(model, "raspberry pi compute module 5"),
		strings.HasPrefix(model, "raspberry pi 500"):
		return "raspberry-pi-5"
	case strings.HasPrefix(model, "raspberry pi 4"), strings.HasPrefix(model, "raspberry pi compute module 4"),
		strings.HasPrefix(model, "raspberry pi 400"):
		return "raspberry-pi-4"
	}
	return "raspberry-pi"
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
