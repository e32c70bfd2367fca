package hw

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSampleReadsAFixtureRoot(t *testing.T) {
	root := filepath.Join("testdata", "raspberry-pi-5")
	s, err := NewSampler(Options{ProcRoot: filepath.Join(root, "proc"), SysRoot: filepath.Join(root, "sys"), EtcRoot: filepath.Join(root, "etc")}).Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.MemoryBytes == 0 || len(s.Temperatures) == 0 || s.MaxCelsius <= 0 {
		t.Fatalf("sample %+v", s)
	}
}

func TestSampleSeesTemperaturesChange(t *testing.T) {
	sys := t.TempDir()
	proc := t.TempDir()
	zone := filepath.Join(sys, "class", "thermal", "thermal_zone0")
	os.MkdirAll(zone, 0o755)
	os.WriteFile(filepath.Join(zone, "type"), []byte("cpu-thermal\n"), 0o644)
	sampler := NewSampler(Options{ProcRoot: proc, SysRoot: sys})
	for _, milli := range []string{"55000", "86500", "70000"} {
		os.WriteFile(filepath.Join(zone, "temp"), []byte(milli+"\n"), 0o644)
		s, err := sampler.Sample(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]float64{"55000": 55, "86500": 86.5, "70000": 70}[milli]; s.MaxCelsius != want {
			t.Fatalf("%s m°C read as %v", milli, s.MaxCelsius)
		}
	}
}

func TestCPUPercentFromTwoSamples(t *testing.T) {
	a := &Sample{}
	a.CPUBusy, a.CPUTotal = parseCPUStat("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3 4")
	b := &Sample{}
	b.CPUBusy, b.CPUTotal = parseCPUStat("cpu  150 0 150 750 100 0 0 0 0 0\n")
	if got := b.CPUPercent(a); got != 100*100.0/150 {
		t.Fatalf("cpu %% = %v", got)
	}
}

// TestSampleKeepsGoodZonesBesidePoweredOffOnes samples the Jetson fixture,
// whose cv0, cv1 and cv2 zones read -256 °C with their blocks powered off:
// the six live zones are kept and the three dead ones reported beside them.
func TestSampleKeepsGoodZonesBesidePoweredOffOnes(t *testing.T) {
	t.Parallel()
	opts := fixture("jetson-orin-nano", "")
	s, err := NewSampler(opts).Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []Temperature{
		{"thermal_zone0", "cpu-thermal", 48.093},
		{"thermal_zone1", "gpu-thermal", 46.281},
		{"thermal_zone5", "soc0-thermal", 46.5},
		{"thermal_zone6", "soc1-thermal", 47.343},
		{"thermal_zone7", "soc2-thermal", 45.531},
		{"thermal_zone8", "tj-thermal", 48.093},
	}
	if len(s.Temperatures) != len(want) {
		t.Fatalf("temperatures = %+v, want %+v", s.Temperatures, want)
	}
	for i := range want {
		if s.Temperatures[i] != want[i] {
			t.Errorf("temperatures[%d] = %+v, want %+v", i, s.Temperatures[i], want[i])
		}
	}
	if s.MaxCelsius != 48.093 {
		t.Errorf("max = %v, want 48.093", s.MaxCelsius)
	}
	for _, zone := range []string{"thermal_zone2 (cv0-thermal)", "thermal_zone3 (cv1-thermal)", "thermal_zone4 (cv2-thermal)"} {
		if !hasNote(s.Missing, "thermal", zone) {
			t.Errorf("missing = %+v, want %s reported", s.Missing, zone)
		}
	}
	if hasNote(s.Errors, "thermal", "") {
		t.Errorf("errors = %+v: a powered-off zone is absent, not broken", s.Errors)
	}
	if s.MemoryBytes == 0 {
		t.Error("memory was lost")
	}
}

// TestSampleKeepsEachSourceApart breaks one part of several sources: an
// unreadable zram device beside a good meminfo, a garbled load average, a
// missing /proc/stat. What could be read is kept; each failure is noted
// under its source, as absent or broken.
func TestSampleKeepsEachSourceApart(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	write(t, root, "proc/meminfo", "MemTotal: 8000000 kB\nMemAvailable: 7000000 kB\nSwapTotal: 0 kB\n")
	write(t, root, "proc/loadavg", "0.50 x 0.70 1/234 5678\n")
	write(t, root, "proc/uptime", "3600.25 7000.00\n")
	write(t, root, "sys/class/thermal/thermal_zone0/type", "cpu-thermal\n")
	write(t, root, "sys/class/thermal/thermal_zone0/temp", "51000\n")
	// zram0's disksize is a directory: a real error, not absence.
	if err := os.MkdirAll(filepath.Join(root, "sys", "block", "zram0", "disksize"), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := NewSampler(Options{ProcRoot: filepath.Join(root, "proc"), SysRoot: filepath.Join(root, "sys")}).Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.MemoryBytes != 8000000*1024 || s.AvailableBytes != 7000000*1024 {
		t.Errorf("memory %d, available %d: lost to the broken zram device", s.MemoryBytes, s.AvailableBytes)
	}
	if s.Load1 != 0.5 || s.Load5 != 0 || s.Load15 != 0.7 {
		t.Errorf("load %v %v %v, want 0.5 0 0.7", s.Load1, s.Load5, s.Load15)
	}
	if s.Uptime != 3600250*time.Millisecond || s.MaxCelsius != 51 {
		t.Errorf("uptime %v, max %v", s.Uptime, s.MaxCelsius)
	}
	for _, n := range []struct {
		notes       []Note
		source, sub string
	}{
		{s.Errors, "memory", "zram0/disksize"},
		{s.Errors, "load", `"x"`},
		{s.Missing, "cpu", "stat"},
	} {
		if !hasNote(n.notes, n.source, n.sub) {
			t.Errorf("no %s note with %q in missing %+v, errors %+v", n.source, n.sub, s.Missing, s.Errors)
		}
	}
	if len(s.Missing)+len(s.Errors) != 3 {
		t.Errorf("missing %+v, errors %+v: want exactly three notes", s.Missing, s.Errors)
	}
}
