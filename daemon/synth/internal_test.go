package synth

import (
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestF16Bits(t *testing.T) {
	tests := []struct {
		name string
		in   float32
		want uint16
	}{
		{"zero", 0, 0x0000},
		{"negative zero", float32(math.Copysign(0, -1)), 0x8000},
		{"one", 1, 0x3C00},
		{"minus two", -2, 0xC000},
		{"tenth", 0.1, 0x2E66},
		{"largest finite", 65504, 0x7BFF},
		{"rounds up to infinity", 65520, 0x7C00},
		{"overflow", 1e9, 0x7C00},
		{"negative overflow", -1e9, 0xFC00},
		{"smallest normal", 0x1p-14, 0x0400},
		{"largest subnormal", 0x3FFp-24, 0x03FF},
		{"smallest subnormal", 0x1p-24, 0x0001},
		{"half the smallest subnormal ties to zero", 0x1p-25, 0x0000},
		{"a bit more than half rounds up", 0x1.01p-25, 0x0001},
		{"1.5 subnormal ulps tie to even", 0x3p-25, 0x0002},
		{"underflow", 1e-10, 0x0000},
		{"tie to even stays", 1 + 0x1p-11, 0x3C00},
		{"tie to even rounds up", 1 + 0x3p-11, 0x3C02},
		{"subnormal rounds into normal", 0x3FF.Cp-24, 0x0400},
		{"infinity", float32(math.Inf(1)), 0x7C00},
		{"nan", float32(math.NaN()), 0x7E00},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := f16Bits(tc.in); got != tc.want {
				t.Errorf("f16Bits(%g) = %#04x, want %#04x", tc.in, got, tc.want)
			}
		})
	}
}

// TestF16RoundTrip converts every half-precision value to float32 and
// back, and checks random floats land within half an ulp.
func TestF16RoundTrip(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		if h&0x7C00 == 0x7C00 && h&0x3FF != 0 {
			continue // NaNs: any NaN will do
		}
		if got := f16Bits(f16Float(uint16(h))); got != uint16(h) {
			t.Fatalf("%#04x → %g → %#04x", h, f16Float(uint16(h)), got)
		}
	}
	r := rng{state: 7}
	for i := 0; i < 100000; i++ {
		x := r.normal() * 0.02
		y := f16Float(f16Bits(x))
		// Half has 11 significant bits: relative error ≤ 2^-11, or
		// half a subnormal ulp (2^-25) for tiny values.
		if d := math.Abs(float64(x - y)); d > math.Abs(float64(x))*0x1p-11 && d > 0x1p-25 {
			t.Fatalf("%g → %g, error %g", x, y, d)
		}
	}
}

func TestNormal(t *testing.T) {
	r := rng{state: 1}
	const n = 200000
	var sum, sq float64
	for i := 0; i < n; i++ {
		x := float64(r.normal())
		sum += x
		sq += x * x
		if math.Abs(x) > 2*math.Sqrt(3)+1e-6 {
			t.Fatalf("sample %g beyond ±2√3", x)
		}
	}
	mean, variance := sum/n, sq/n-(sum/n)*(sum/n)
	if math.Abs(mean) > 0.01 || math.Abs(variance-1) > 0.02 {
		t.Errorf("mean %g, variance %g; want 0, 1", mean, variance)
	}
	if seedFor(1, "a") == seedFor(1, "b") || seedFor(1, "a") == seedFor(2, "a") {
		t.Error("tensor seeds collide")
	}
}

func TestVocabulary(t *testing.T) {
	v := vocabulary()
	if len(v.tokens) != len(v.scores) || len(v.tokens) != len(v.types) {
		t.Fatalf("arrays differ: %d tokens, %d scores, %d types", len(v.tokens), len(v.scores), len(v.types))
	}
	ids := make(map[string]int, len(v.tokens))
	for i, tok := range v.tokens {
		if j, dup := ids[tok]; dup {
			t.Fatalf("token %q at %d and %d", tok, j, i)
		}
		ids[tok] = i
	}
	for tok, want := range map[string]int{
		"<unk>": tokenUnk, "<s>": tokenBOS, "</s>": tokenEOS,
		"<|im_start|>": tokenImStart, "<|im_end|>": tokenImEnd,
		"<0x00>": firstByteToken, "<0x0A>": firstByteToken + 10, "<0xFF>": firstByteToken + 255,
	} {
		if ids[tok] != want {
			t.Errorf("%s has id %d, want %d", tok, ids[tok], want)
		}
	}
	if v.types[tokenImEnd] != tokenControl || v.types[firstByteToken+65] != tokenByte || v.types[tokenUnk] != tokenUnknown {
		t.Error("special token types are wrong")
	}
	for _, w := range []string{"the", "quick", "brown", "fox", "hello", "world"} {
		if _, ok := ids[spaceMark+w]; !ok {
			t.Errorf("word %q is not a token", w)
		}
	}
	// Every piece must be reachable by SPM's pairwise merges: each
	// prefix of a "▁word" piece is a token, scored below the piece.
	for i, tok := range v.tokens {
		if v.types[i] != tokenNormal {
			continue
		}
		if want := float32(utf8.RuneCountInString(tok)); v.scores[i] != want {
			t.Errorf("%q scores %g, want %g", tok, v.scores[i], want)
		}
		if !strings.HasPrefix(tok, spaceMark) {
			continue
		}
		for j := len(spaceMark); j < len(tok); j++ {
			if _, ok := ids[tok[:j]]; !ok {
				t.Errorf("%q is a token but its prefix %q is not", tok, tok[:j])
			}
		}
	}
	if n := len(v.tokens); n < 2000 || n > 5000 {
		t.Errorf("%d tokens; the embedding matrices assume about 3000", n)
	}
}
