package hw

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestThermalZones reads zones whose temperatures all differ, in numeric
// zone order (thermal_zone10 after thermal_zone2), skips a powered-off
// block's -256 °C, records an unreadable zone, and warns on the hot one.
func TestThermalZones(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	zones := []struct {
		n          string
		typ, milli string
	}{
		{"0", "cpu-thermal", "45250"},
		{"1", "gpu-thermal", "85500"},
		{"2", "cv0-thermal", "-256000"},
		{"10", "tj-thermal", "52125"},
		{"3", "soc0-thermal", "39875"},
	}
	for _, z := range zones {
		write(t, root, "sys/class/thermal/thermal_zone"+z.n+"/type", z.typ+"\n")
		write(t, root, "sys/class/thermal/thermal_zone"+z.n+"/temp", z.milli+"\n")
	}
	// thermal_zone4's temp is a directory: unreadable, an error, not absence.
	write(t, root, "sys/class/thermal/thermal_zone4/type", "pmic-die\n")
	if err := os.MkdirAll(filepath.Join(root, "sys/class/thermal/thermal_zone4/temp"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, root, "proc/meminfo", "MemTotal: 8000000 kB\nMemAvailable: 7000000 kB\nSwapTotal: 0 kB\n")

	p := detect(t, Options{ProcRoot: filepath.Join(root, "proc"), SysRoot: filepath.Join(root, "sys"),
		EtcRoot: root, DevRoot: root, RootDir: root})

	want := []Temperature{
		{"thermal_zone0", "cpu-thermal", 45.25},
		{"thermal_zone1", "gpu-thermal", 85.5},
		{"thermal_zone3", "soc0-thermal", 39.875},
		{"thermal_zone10", "tj-thermal", 52.125},
	}
	if len(p.Temperatures) != len(want) {
		t.Fatalf("temperatures = %+v, want %+v", p.Temperatures, want)
	}
	for i := range want {
		if p.Temperatures[i] != want[i] {
			t.Errorf("temperatures[%d] = %+v, want %+v", i, p.Temperatures[i], want[i])
		}
	}
	if !hasNote(p.Missing, "thermal", "thermal_zone2 (cv0-thermal)") {
		t.Errorf("missing = %+v, want the powered-off cv0 zone", p.Missing)
	}
	if !hasNote(p.Errors, "thermal", "thermal_zone4/temp") {
		t.Errorf("errors = %+v, want the unreadable zone 4", p.Errors)
	}
	var hot []string
	for _, w := range p.Recommended.Warnings {
		if strings.Contains(w, "°C") {
			hot = append(hot, w)
		}
	}
	if len(hot) != 1 || !strings.Contains(hot[0], "thermal_zone1 (gpu-thermal) is at 85.5 °C") {
		t.Errorf("thermal warnings = %q, want one for gpu-thermal at 85.5 °C", hot)
	}
}

// TestThermalHwmonFallback reads hwmon through gopsutil when there are no
// thermal zones, as on the Xeon fixture.
func TestThermalHwmonFallback(t *testing.T) {
	t.Parallel()
	p := detect(t, fixture("xeon-silver-4216", "linux-x64"))
	want := map[string]float64{"coretemp_package_id_0": 41, "coretemp_core_0": 38, "coretemp_core_1": 39}
	if len(p.Temperatures) != len(want) {
		t.Fatalf("temperatures = %+v", p.Temperatures)
	}
	for _, tz := range p.Temperatures {
		if tz.Zone != "hwmon" || want[tz.Type] != tz.Celsius {
			t.Errorf("temperature %+v, want hwmon %s at %v", tz, tz.Type, want[tz.Type])
		}
	}
}

func TestThermalNotPresent(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	write(t, root, "proc/meminfo", "MemTotal: 8000000 kB\nMemAvailable: 7000000 kB\n")
	write(t, root, "sys/devices/system/cpu/online", "0-3\n")
	p := detect(t, Options{ProcRoot: filepath.Join(root, "proc"), SysRoot: filepath.Join(root, "sys"),
		EtcRoot: root, DevRoot: root, RootDir: root})
	if len(p.Temperatures) != 0 || !hasNote(p.Missing, "thermal", "temperature sensors") {
		t.Errorf("temperatures %+v, missing %+v", p.Temperatures, p.Missing)
	}
	if p.Temperatures == nil {
		t.Error("temperatures is nil; JSON would print null instead of []")
	}
}
