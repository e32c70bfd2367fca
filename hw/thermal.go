package hw

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/shirou/gopsutil/v4/sensors"
)

// Temperature is one sensor's reading.
type Temperature struct {
	// Zone names the source: "thermal_zone3", or "hwmon" for sensors read
	// from /sys/class/hwmon on machines without thermal zones.
	Zone string `json:"zone"`
	// Type is the zone's type ("cpu-thermal", "x86_pkg_temp") or the hwmon
	// sensor key ("coretemp_package_id_0").
	Type    string  `json:"type"`
	Celsius float64 `json:"celsius"`
}

// Readings outside this range are not temperatures: Jetson reports
// -256 °C for a zone whose block (a DLA, a PVA) is powered off.
const minCelsius, maxCelsius = -60.0, 200.0

// collectThermal reads /sys/class/thermal/thermal_zone*/{type,temp}
// directly, keeping each zone's number, and falls back to gopsutil's hwmon
// reader when the kernel has no thermal zones (common on x86 servers).
func collectThermal(_ context.Context, e *env, p *Profile) error {
	zones, _ := filepath.Glob(e.sysPath("class", "thermal", "thermal_zone*"))
	sort.Slice(zones, func(i, j int) bool { return zoneNum(zones[i]) < zoneNum(zones[j]) })
	var errs []error
	for _, dir := range zones {
		zone := filepath.Base(dir)
		typ, err := readTrim(filepath.Join(dir, "type"))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		tempPath := filepath.Join(dir, "temp")
		b, err := os.ReadFile(tempPath)
		if err != nil {
			errs = append(errs, sensorErr(tempPath, err))
			continue
		}
		milli, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("parsing %s: %w", tempPath, err))
			continue
		}
		c := float64(milli) / 1000
		if c < minCelsius || c > maxCelsius {
			errs = append(errs, notPresent("%s (%s) reads %.1f °C, its block powered off", zone, typ, c))
			continue
		}
		p.Temperatures = append(p.Temperatures, Temperature{Zone: zone, Type: typ, Celsius: c})
	}
	if len(zones) > 0 {
		return errors.Join(errs...)
	}

	stats, err := sensors.TemperaturesWithContext(e.gctx)
	for _, s := range stats {
		if s.Temperature < minCelsius || s.Temperature > maxCelsius {
			continue
		}
		p.Temperatures = append(p.Temperatures, Temperature{Zone: "hwmon", Type: s.SensorKey, Celsius: s.Temperature})
	}
	if err != nil {
		// gopsutil returns what it could read plus a warning list.
		return fmt.Errorf("reading hwmon sensors: %w", err)
	}
	if len(p.Temperatures) == 0 {
		return notPresent("temperature sensors (no thermal zones or hwmon temp inputs under %s)", e.sys)
	}
	return nil
}

func zoneNum(dir string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(dir), "thermal_zone"))
	if err != nil {
		return 1 << 30
	}
	return n
}
