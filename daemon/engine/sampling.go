package engine

import (
	"math"
	"math/rand/v2"

	"github.com/hybridgroup/yzma/pkg/llama"
)

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
