package jsonschema

import "testing"

func TestDecimalCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"0", "-0", 0}, {"0", "0.000", 0}, {"1", "1.0", 0}, {"1e2", "100", 0}, {"1.5e1", "15", 0}, {"0.1", "1e-1", 0},
		{"500", "500.000000000000000000001", -1}, {"-500", "-500.000000000000000000001", 1},
		{"9", "10", -1}, {"-9", "-10", 1}, {"0.09", "0.1", -1}, {"-0.001", "0", -1}, {"1e999999999999", "1e400", 1},
		{"1e-999999999999", "0", 1}, {"-1e-999999999999", "0", -1}, {"123456789012345678901234567890", "123456789012345678901234567891", -1},
	}
	for _, tc := range tests {
		a, okA := parseDecimal(tc.a)
		b, okB := parseDecimal(tc.b)
		if !okA || !okB {
			t.Fatalf("%s or %s does not parse", tc.a, tc.b)
		}
		if got := a.cmp(b); got != tc.want {
			t.Errorf("cmp(%s, %s) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := b.cmp(a); got != -tc.want {
			t.Errorf("cmp(%s, %s) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}

func TestDecimalParseRejectsNonJSON(t *testing.T) {
	for _, s := range []string{"", "-", "01", "1.", ".5", "+1", "1e", "1e+", "0x1", "1 ", "NaN", "--1", "1.5.5"} {
		if _, ok := parseDecimal(s); ok {
			t.Errorf("%q parses", s)
		}
	}
}

func TestDecimalIntegers(t *testing.T) {
	tests := []struct {
		s           string
		isInt       bool
		floor, ceil int64
		clampedCeil bool
	}{
		{"0", true, 0, 0, false}, {"1.0", true, 1, 1, false}, {"12e3", true, 12000, 12000, false}, {"1.5", false, 1, 2, false},
		{"-1.5", false, -2, -1, false}, {"0.001", false, 0, 1, false}, {"-0.001", false, -1, 0, false},
		{"1.5e1", true, 15, 15, false}, {"1e20", true, intLimit, intLimit, true}, {"-1e300", true, -intLimit, -intLimit, true},
		{"9999999999999999.5", false, intLimit, intLimit, true},
	}
	for _, tc := range tests {
		d, _ := parseDecimal(tc.s)
		if d.isInt() != tc.isInt {
			t.Errorf("%s: isInt %v", tc.s, d.isInt())
		}
		if f, _ := d.intBound(false, intLimit); f != tc.floor {
			t.Errorf("%s: floor %d, want %d", tc.s, f, tc.floor)
		}
		if c, clamped := d.intBound(true, intLimit); c != tc.ceil || clamped != tc.clampedCeil {
			t.Errorf("%s: ceil %d (clamped %v), want %d (%v)", tc.s, c, clamped, tc.ceil, tc.clampedCeil)
		}
	}
}
