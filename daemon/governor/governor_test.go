package governor

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/hw"
)

func TestThermalStateMachineHasHysteresis(t *testing.T) {
	c := config.ThermalGovernor{MaxCelsius: 80, ResumeCelsius: 70}
	tests := []struct {
		from Thermal
		temp float64
		want Thermal
	}{
		{Normal, 79.9, Normal},
		{Normal, 80, Hot},
		{Hot, 75, Hot}, // between resume and max: stays hot
		{Hot, 70, Normal},
		{Normal, 75, Normal},
		{Hot, 0, Normal}, // the sensor vanished: do not stay throttled
	}
	for _, tt := range tests {
		if got := next(tt.from, tt.temp, c); got != tt.want {
			t.Errorf("next(%v, %v) = %v, want %v", tt.from, tt.temp, got, tt.want)
		}
	}
	if next(Normal, 99, config.ThermalGovernor{}) != Normal {
		t.Error("a disabled governor throttled")
	}
}

// recorder is the engine and job queue as the governor sees them.
type recorder struct{ events []string }

func (r *recorder) Throttle(on bool, threads, parallel int) {
	r.events = append(r.events, fmt.Sprintf("throttle %v %d %d", on, threads, parallel))
}
func (r *recorder) HoldBelow(p int) { r.events = append(r.events, fmt.Sprintf("hold %d", p)) }
func (r *recorder) RefuseBelow(p int, _ string) {
	r.events = append(r.events, fmt.Sprintf("refuse %d", p))
}

func TestGovernorFollowsFixtureTemperaturesOverTime(t *testing.T) {
	sys, proc := t.TempDir(), t.TempDir()
	zone := filepath.Join(sys, "class", "thermal", "thermal_zone0")
	os.MkdirAll(zone, 0o755)
	os.WriteFile(filepath.Join(zone, "type"), []byte("cpu-thermal\n"), 0o644)
	cfg := config.Default().Governors
	r := &recorder{}
	g := New(cfg, hw.NewSampler(hw.Options{ProcRoot: proc, SysRoot: sys}), r, slog.New(slog.DiscardHandler))
	// A board heating up, lingering between the limits, then cooling.
	for _, c := range []int{60, 78, 82, 85, 76, 72, 69, 75} {
		os.WriteFile(filepath.Join(zone, "temp"), []byte(fmt.Sprint(c*1000)), 0o644)
		g.Tick(context.Background())
		if c == 85 && g.State().Thermal != "hot" {
			t.Fatalf("at %d°C the state is %s", c, g.State().Thermal)
		}
	}
	want := []string{"throttle true 1 1", "hold 5", "throttle false 1 1", "hold 0"}
	if fmt.Sprint(r.events) != fmt.Sprint(want) {
		t.Fatalf("actions %v, want %v", r.events, want)
	}
	if st := g.State(); st.Thermal != "normal" || st.Celsius != 75 {
		t.Fatalf("final state %+v", st)
	}
}

func TestDiskGovernorRefusesLowPriorityWhenSpaceIsLow(t *testing.T) {
	cfg := config.Default().Governors
	cfg.Disk.MinFree = 1 << 60 // more than any disk: low from the start
	r := &recorder{}
	g := New(cfg, hw.NewSampler(hw.Options{StateDir: t.TempDir()}), r, slog.New(slog.DiscardHandler))
	g.Tick(context.Background())
	if st := g.State(); !st.DiskLow || st.RefusedBelow != 5 || fmt.Sprint(r.events) != "[refuse 5]" {
		t.Fatalf("state %+v events %v", st, r.events)
	}
	g.cfg.Disk.MinFree = 1 // now there is plenty
	g.Tick(context.Background())
	if st := g.State(); st.DiskLow || fmt.Sprint(r.events) != "[refuse 5 refuse 0]" {
		t.Fatalf("state %+v events %v", st, r.events)
	}
}

// TestGovernorThrottlesAJetsonWithPoweredOffZones drives the governor
// through a copy of the Jetson Orin Nano fixture, whose powered-off cv
// zones read -256 °C beside the live ones, with its CPU zone made hot and
// then cool again. The dead zones must not hide the hot one.
func TestGovernorThrottlesAJetsonWithPoweredOffZones(t *testing.T) {
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS(filepath.Join("..", "..", "hw", "testdata", "jetson-orin-nano"))); err != nil {
		t.Fatal(err)
	}
	cpuTemp := filepath.Join(root, "sys", "class", "thermal", "thermal_zone0", "temp")
	if b, err := os.ReadFile(filepath.Join(filepath.Dir(cpuTemp), "type")); err != nil || string(b) != "cpu-thermal\n" {
		t.Fatalf("fixture zone 0 is %q (%v), want cpu-thermal", b, err)
	}
	setTemp := func(milli string) {
		t.Helper()
		if err := os.WriteFile(cpuTemp, []byte(milli+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := &recorder{}
	g := New(config.Default().Governors, hw.NewSampler(hw.Options{ProcRoot: filepath.Join(root, "proc"), SysRoot: filepath.Join(root, "sys")}),
		r, slog.New(slog.DiscardHandler))

	setTemp("86500")
	g.Tick(context.Background())
	if st := g.State(); st.Thermal != "hot" || st.Celsius != 86.5 {
		t.Fatalf("with the CPU zone at 86.5 °C the state is %+v", st)
	}
	if s := g.Last(); len(s.Missing) < 3 {
		t.Errorf("sample missing = %+v, want the three powered-off cv zones", s.Missing)
	}
	setTemp("65000")
	g.Tick(context.Background())
	if st := g.State(); st.Thermal != "normal" || st.Celsius != 65 {
		t.Fatalf("with the CPU zone at 65 °C the state is %+v", st)
	}
	want := []string{"throttle true 1 1", "hold 5", "throttle false 1 1", "hold 0"}
	if fmt.Sprint(r.events) != fmt.Sprint(want) {
		t.Fatalf("actions %v, want %v", r.events, want)
	}
}
