package engine

import (
	"math"
	"math/rand/v2"

	"github.com/hybridgroup/yzma/pkg/llama"
)

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

func (s Sampling) validate() error {
	switch {
	case s.Temperature > 100:
		return invalid("temperature %g is out of range (0 to 100)", s.Temperature)
	case s.TopK < 0:
		return invalid("top_k %d must not be negative", s.TopK)
	case s.TopP < 0 || s.TopP > 1:
		return invalid("top_p %g must be between 0 and 1", s.TopP)
	case s.MinP < 0 || s.MinP > 1:
		return invalid("min_p %g must be between 0 and 1", s.MinP)
	case s.RepeatPenalty < 0 || s.RepeatPenalty > 10:
		return invalid("repeat_penalty %g must be between 0 and 10", s.RepeatPenalty)
	case s.RepeatLastN < 0:
		return invalid("repeat_last_n %d must not be negative", s.RepeatLastN)
	}
	return nil
}

// newSampler builds a llama.cpp sampler chain for one sequence. The
// grammar, when set, comes first so that every later stage only sees
// tokens the grammar allows.
func newSampler(vocab llama.Vocab, nVocab int32, s Sampling, grammar string, eog []llama.Token) (llama.Sampler, error) {
	chain := llama.SamplerChainInit(llama.SamplerChainDefaultParams())
	if s.IgnoreEOS && len(eog) > 0 {
		bias := make([]llama.LogitBias, len(eog))
		for i, t := range eog {
			bias[i] = llama.LogitBias{Token: t, Bias: float32(math.Inf(-1))}
		}
		// llama.cpp copies the biases, so the slice need not outlive this.
		llama.SamplerChainAdd(chain, llama.SamplerInitLogitBias(nVocab, int32(len(bias)), &bias[0]))
	}
	if grammar != "" {
		g := llama.SamplerInitGrammar(vocab, grammar, "root")
		if g == 0 {
			llama.SamplerFree(chain)
			return 0, invalid("grammar does not parse (GBNF with a rule named root is expected)")
		}
		llama.SamplerChainAdd(chain, g)
	}
	if s.RepeatPenalty != 1 && s.RepeatLastN != 0 {
		llama.SamplerChainAdd(chain, llama.SamplerInitPenalties(nVocab, s.RepeatLastN, s.RepeatPenalty, 0, 0))
	}
	if s.Temperature <= 0 {
		llama.SamplerChainAdd(chain, llama.SamplerInitGreedy())
		return chain, nil
	}
	seed := s.Seed
	if !s.HasSeed {
		seed = rand.Uint32()
	}
	if s.TopK > 0 {
		llama.SamplerChainAdd(chain, llama.SamplerInitTopK(s.TopK))
	}
	if s.TopP > 0 && s.TopP < 1 {
		llama.SamplerChainAdd(chain, llama.SamplerInitTopP(s.TopP, 1))
	}
	if s.MinP > 0 {
		llama.SamplerChainAdd(chain, llama.SamplerInitMinP(s.MinP, 1))
	}
	llama.SamplerChainAdd(chain, llama.SamplerInitTemp(s.Temperature))
	llama.SamplerChainAdd(chain, llama.SamplerInitDist(seed))
	return chain, nil
}
