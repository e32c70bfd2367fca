package synth

// rng is SplitMix64: one 64-bit word of state, a few instructions per
// number, and statistically good enough for random weights. The point is
// speed and a stream that never changes, so files stay byte-identical
// across Go versions (math/rand's generators promise neither).
type rng struct{ state uint64 }

func (r *rng) next() uint64 {
	r.state += 0x9E3779B97F4A7C15
	z := r.state
	z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
	z = (z ^ z>>27) * 0x94D049BB133111EB
	return z ^ z>>31
}

// normal returns an approximately standard normal number: the sum of four
// uniform 16-bit draws from one 64-bit word (Irwin–Hall), centred and
// scaled to unit variance. Its tails stop at ±2√3, which suits weights.
func (r *rng) normal() float32 {
	x := r.next()
	sum := x&0xFFFF + x>>16&0xFFFF + x>>32&0xFFFF + x>>48
	// Each draw is uniform on [0, 65535]: mean 32767.5, variance
	// (65536²-1)/12; four of them have variance (65536²-1)/3.
	const mean = 4 * 32767.5
	const invStd = 1.7320508 / 65536 // √3 / 65536 ≈ 1/√((65536²-1)/3)
	return float32((float64(sum) - mean) * invStd)
}

// seedFor derives a tensor's own seed from the model's seed and the
// tensor's name (FNV-1a), so each tensor's weights depend on nothing
// else: not on the order tensors are written in, nor on the spec's other
// tensors.
func seedFor(seed uint64, name string) uint64 {
	h := uint64(0xCBF29CE484222325) ^ seed
	for i := 0; i < len(name); i++ {
		h ^= uint64(name[i])
		h *= 0x100000001B3
	}
	return h
}
