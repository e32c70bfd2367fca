package bytesize_test

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/ember-edge/ember/internal/bytesize"
)

// TestParse holds what config.ParseByteSize and fleet.ParseBytes each
// accepted before they became Parse, and the input they got wrong.
func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want bytesize.Size
	}{
		// config.ParseByteSize's cases.
		{"512", 512}, {"64k", 64 << 10}, {"512MiB", 512 << 20}, {"2GiB", 2 << 30}, {"1.5GB", 1.5e9}, {"100 MB", 100e6},
		// fleet.ParseBytes's cases.
		{"2GB", 2e9}, {"100", 100}, {"1.5 g", 3 << 29}, {"6GiB", 6 << 30},
		// Every unit, in any case, with and without a space.
		{"1b", 1}, {"1 B", 1}, {"1KiB", 1 << 10}, {"1kib", 1 << 10}, {"1MIB", 1 << 20}, {"1TiB", 1 << 40},
		{"1kB", 1000}, {"1KB", 1000}, {"1mb", 1e6}, {"1Gb", 1e9}, {"1TB", 1e12},
		{"1K", 1 << 10}, {"1m", 1 << 20}, {"1G", 1 << 30}, {"1t", 1 << 40},
		// Number forms strconv.ParseFloat gave both.
		{"  7  ", 7}, {"+5", 5}, {"-0", 0}, {"0", 0}, {".5k", 512}, {"5.", 5}, {"1e3", 1000}, {"1E3k", 1000 << 10},
		{"0x1p4", 16}, {"1.9", 1}, {"0.1b", 0}, {"1_000", 1000},
		// Exact where float64 would round.
		{"9007199254740993", 1<<53 + 1}, {"9223372036854775807", math.MaxInt64}, {"8388607TiB", 8388607 << 40},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := bytesize.Parse(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("Parse(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in   string
		want error
		says string
	}{
		{"", bytesize.ErrSyntax, `want a size like 512MiB, 2GiB, 100MB or 4096, got ""`},
		{"   ", bytesize.ErrSyntax, ""},
		{"MiB", bytesize.ErrSyntax, ""},
		{"lots", bytesize.ErrSyntax, `got "lots"`},
		{"5 parsecs", bytesize.ErrUnit, `unknown unit "parsecs" in "5 parsecs" (want B, KiB`},
		{"12XB", bytesize.ErrUnit, `unknown unit "XB" in "12XB"`},
		{"5kk", bytesize.ErrUnit, ""},
		{"1.2.3", bytesize.ErrSyntax, ""},
		{"1 000", bytesize.ErrSyntax, ""},
		{"0x10", bytesize.ErrSyntax, ""},
		{"-1", bytesize.ErrNegative, `a size cannot be negative, got "-1"`},
		{"-1MiB", bytesize.ErrNegative, ""},
		{"-0.5", bytesize.ErrNegative, ""},
		{"-1e400", bytesize.ErrNegative, ""},
		// Before, these became whatever the CPU made of NaN or ±Inf in an int64.
		{"nan", bytesize.ErrSyntax, ""},
		{"inf", bytesize.ErrSyntax, ""},
		{"-Infinity", bytesize.ErrUnit, ""},
		{"1e30", bytesize.ErrRange, `too large: the most is 8 EiB, got "1e30"`},
		{"1e400", bytesize.ErrRange, ""},
		{"9223372036854775808", bytesize.ErrRange, ""},
		{"8388608TiB", bytesize.ErrRange, ""},
		{"9.3e18", bytesize.ErrRange, ""},
		{"9e6 TiB", bytesize.ErrRange, ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := bytesize.Parse(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse(%q) = %d, %v; want %v", tt.in, got, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q does not say %q", err, tt.says)
			}
		})
	}
}

func TestString(t *testing.T) {
	for in, want := range map[bytesize.Size]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 512 << 20: "512.0 MiB",
		7803330560: "7.3 GiB", 4 << 40: "4.0 TiB", 3 << 50: "3.0 PiB", math.MaxInt64: "8.0 EiB",
		-2048: "-2.0 KiB", math.MinInt64: "-8.0 EiB",
	} {
		if got := in.String(); got != want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(in), got, want)
		}
	}
}

func TestYAML(t *testing.T) {
	var v struct {
		A bytesize.Size `yaml:"a"`
		B bytesize.Size `yaml:"b"`
	}
	if err := yaml.Unmarshal([]byte("a: 512MiB\nb: 4096\n"), &v); err != nil || v.A != 512<<20 || v.B != 4096 {
		t.Fatalf("got %+v, %v", v, err)
	}
	out, err := yaml.Marshal(v)
	if err != nil || string(out) != "a: 536870912\nb: 4096\n" {
		t.Fatalf("marshal: %q, %v", out, err)
	}
	for doc, says := range map[string]string{
		"a: {x: 1}\n": "want a size like 512MiB, got a mapping",
		"a: [1]\n":    "got a list",
		"a: 12XB\n":   `unknown unit "XB"`,
		"a: -1\n":     "cannot be negative",
	} {
		if err := yaml.Unmarshal([]byte(doc), &v); err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("%q: error %v, want it to say %q", doc, err, says)
		}
	}
}

// TestJSON pins what fleet manifests need: an integer both ways, and no
// units (a canonical, signed manifest has one spelling per value).
func TestJSON(t *testing.T) {
	var v struct{ N bytesize.Size }
	if err := json.Unmarshal([]byte(`{"N": 1610612736}`), &v); err != nil || v.N != 3<<29 {
		t.Fatalf("got %d, %v", v.N, err)
	}
	if out, _ := json.Marshal(v); string(out) != `{"N":1610612736}` {
		t.Errorf("marshal: %s", out)
	}
	for _, doc := range []string{`{"N": "1.5GiB"}`, `{"N": 1.5}`} {
		if err := json.Unmarshal([]byte(doc), &v); err == nil {
			t.Errorf("%s accepted", doc)
		}
	}
}

// FuzzParse checks that Parse never panics, never returns a negative
// size, reads a plain number of bytes back exactly, and reads String's
// output (below 1 PiB) back to within its one-decimal rounding.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"512", "64k", "512MiB", "1.5GB", "100 MB", "1.5 g", "-1", "12XB", "1e30", "nan", "0x1p4", "9223372036854775807", " 8e6 TiB ", "1E3k"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := bytesize.Parse(s)
		if err != nil {
			if v != 0 {
				t.Fatalf("Parse(%q) = %d with error %v", s, v, err)
			}
			return
		}
		if v < 0 {
			t.Fatalf("Parse(%q) = %d", s, v)
		}
		if back, err := bytesize.Parse(strconv.FormatInt(int64(v), 10)); err != nil || back != v {
			t.Fatalf("Parse(%d) = %d, %v", v, back, err)
		}
		if v >= 1<<50 {
			return // String goes on to PiB and EiB, which no config has needed to parse
		}
		back, err := bytesize.Parse(v.String())
		if err != nil {
			t.Fatalf("Parse(%q), from Parse(%q), failed: %v", v.String(), s, err)
		}
		if d := math.Abs(float64(back) - float64(v)); d > 0.05*float64(v)+1 {
			t.Fatalf("Parse(%q) = %d, far from %d", v.String(), back, v)
		}
	})
}
