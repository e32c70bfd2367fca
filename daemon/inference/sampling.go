package inference

// Sampling controls how the next token is chosen.
type Sampling struct {
	// Temperature 0 (or below) selects greedy decoding: deterministic.
	Temperature float32
	TopK        int32
	TopP        float32
	MinP        float32
	// RepeatPenalty 1 disables the penalty.
	RepeatPenalty float32
	RepeatLastN   int32
	// Seed makes sampling reproducible when HasSeed is true; otherwise a
	// random seed is used.
	Seed    uint32
	HasSeed bool
	// IgnoreEOS keeps generating past the end-of-text token until
	// max_tokens or a stop string, as benchmarks need.
	IgnoreEOS bool
}

// DefaultSampling is what a request gets for every value it leaves unset;
// these are llama.cpp's own defaults.
func DefaultSampling() Sampling {
	return Sampling{
		Temperature:   0.8,
		TopK:          40,
		TopP:          0.95,
		MinP:          0.05,
		RepeatPenalty: 1.0,
		RepeatLastN:   64,
	}
}

// Validate checks every value's range; the error wraps ErrInvalidRequest.
func (s Sampling) Validate() error {
	switch {
	case s.Temperature > 100:
		return Invalid("temperature %g is out of range (0 to 100)", s.Temperature)
	case s.TopK < 0:
		return Invalid("top_k %d must not be negative", s.TopK)
	case s.TopP < 0 || s.TopP > 1:
		return Invalid("top_p %g must be between 0 and 1", s.TopP)
	case s.MinP < 0 || s.MinP > 1:
		return Invalid("min_p %g must be between 0 and 1", s.MinP)
	case s.RepeatPenalty < 0 || s.RepeatPenalty > 10:
		return Invalid("repeat_penalty %g must be between 0 and 10", s.RepeatPenalty)
	case s.RepeatLastN < 0:
		return Invalid("repeat_last_n %d must not be negative", s.RepeatLastN)
	}
	return nil
}
