package synth

import "math"

// f16Bits converts f to IEEE 754 half precision, rounding to nearest,
// ties to even, as ggml's own conversion does. Bit manipulation rather
// than a library: it runs once per weight, a hundred million times for
// Bench.
func f16Bits(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xFF
	mant := b & 0x7FFFFF

	switch {
	case exp == 0xFF: // Inf or NaN; keep NaN a (quiet) NaN
		if mant != 0 {
			return sign | 0x7E00
		}
		return sign | 0x7C00
	case exp > 127+15: // too large: Inf
		return sign | 0x7C00
	case exp >= 127-14: // normal half
		// Round to nearest even without a branch (random weights make
		// one unpredictable): add just under half an ulp, plus one if
		// the kept mantissa is odd. A carry out of the mantissa bumps
		// the exponent, as it should, and past the largest finite
		// value gives Inf.
		m := mant + 0x0FFF + (mant>>13)&1
		return sign | uint16(uint32(exp-127+15)<<10+m>>13)
	case exp >= 127-25: // subnormal half (or rounds to the smallest)
		m := mant | 0x800000 // implicit leading one
		shift := uint32(127 - 14 - exp + 13)
		h := m >> shift
		rest := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rest > half || rest == half && h&1 == 1 {
			h++
		}
		return sign | uint16(h)
	}
	return sign // underflows to zero
}

// f16Float converts half-precision bits back to a float32; the tests use
// it to check f16Bits.
func f16Float(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1F
	mant := uint32(h & 0x3FF)
	switch {
	case exp == 0x1F:
		return math.Float32frombits(sign | 0x7F800000 | mant<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp-15+127)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal: mant × 2^-24.
	f := float32(mant) * float32(1.0/(1<<24))
	if sign != 0 {
		f = -f
	}
	return f
}
