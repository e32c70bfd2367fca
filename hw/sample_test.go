package hw

import (
	"context"
	"os"
	"path/filepath"
	"testing"
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
