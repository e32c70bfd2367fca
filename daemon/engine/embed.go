package engine

import (
	"context"
	"fmt"
	"math"

	"github.com/hybridgroup/yzma/pkg/llama"
)

// maxEmbedContext bounds the embedding context: inputs are short texts,
// and the context is allocated in full on first use.
const maxEmbedContext = 2048

type embedJob struct {
	inputs [][]llama.Token
	result chan embedResult
}

type embedResult struct {
	vectors [][]float32
	err     error
}

// Embeddings are the vectors for a batch of inputs.
type Embeddings struct {
	Vectors [][]float32
	Tokens  int
}

// Embed returns one mean-pooled, L2-normalised vector per input.
func (m *Model) Embed(ctx context.Context, inputs []string) (Embeddings, error) {
	if len(inputs) == 0 {
		return Embeddings{}, invalid("no inputs to embed")
	}
	limit := min(m.settings.Context, maxEmbedContext)
	var out Embeddings
	toks := make([][]llama.Token, len(inputs))
	for i, in := range inputs {
		if in == "" {
			return Embeddings{}, invalid("input %d is empty", i)
		}
		if err := checkText(fmt.Sprintf("input %d", i), in, m.opts.MaxPromptBytes); err != nil {
			return Embeddings{}, err
		}
		toks[i] = llama.Tokenize(m.vocab, in, true, false)
		if len(toks[i]) > limit {
			return Embeddings{}, invalid("input %d is %d tokens; embeddings take at most %d", i, len(toks[i]), limit)
		}
		out.Tokens += len(toks[i])
	}
	j := &job{ctx: ctx, emb: &embedJob{inputs: toks, result: make(chan embedResult, 1)}, out: newStream()}
	if err := m.sched.submit(j); err != nil {
		return Embeddings{}, err
	}
	select {
	case r := <-j.emb.result:
		out.Vectors = r.vectors
		return out, r.err
	case <-ctx.Done():
		return Embeddings{}, ctx.Err()
	}
}

// embedder is a second context on the model, with pooling, used for
// embeddings so that generation's KV cache is left alone.
type embedder struct {
	lctx  llama.Context
	mem   llama.Memory
	batch llama.Batch
	n     int
}

func (s *scheduler) embed(j *job) {
	vecs, err := s.embedAll(j)
	if err != nil {
		err = fmt.Errorf("embed with %q: %w", s.m.Name(), err)
	}
	j.emb.result <- embedResult{vectors: vecs, err: err}
}

func (s *scheduler) embedAll(j *job) ([][]float32, error) {
	if s.emb == nil {
		e, err := newEmbedder(s.m)
		if err != nil {
			return nil, err
		}
		s.emb = e
	}
	e := s.emb
	out := make([][]float32, 0, len(j.emb.inputs))
	for _, toks := range j.emb.inputs {
		if err := j.ctx.Err(); err != nil {
			return nil, err
		}
		_ = llama.MemoryClear(e.mem, true)
		_ = e.batch.Clear()
		for i, t := range toks {
			_ = e.batch.Add(t, llama.Pos(i), []llama.SeqId{0}, true)
		}
		var ret int32
		var err error
		if s.m.generates {
			ret, err = llama.Decode(e.lctx, e.batch)
		} else {
			ret, err = llama.Encode(e.lctx, e.batch)
		}
		if err != nil || ret != 0 {
			return nil, decodeError(ret, err)
		}
		v, err := llama.GetEmbeddingsSeq(e.lctx, 0, s.m.nEmbd)
		if err != nil || v == nil {
			return nil, fmt.Errorf("%w: %w", ErrDecode, llamaError("llama.cpp returned no pooled embedding", err))
		}
		out = append(out, normalize(v))
	}
	return out, nil
}

func newEmbedder(m *Model) (*embedder, error) {
	n := min(m.settings.Context, maxEmbedContext)
	cp := llama.ContextDefaultParams()
	cp.NCtx = uint32(n)
	// Pooling needs the whole input in one micro-batch.
	cp.NBatch = uint32(n)
	cp.NUbatch = uint32(n)
	cp.NSeqMax = 1
	cp.NThreads = int32(m.settings.Threads)
	cp.NThreadsBatch = int32(m.settings.Threads)
	cp.Embeddings = 1
	cp.PoolingType = llama.PoolingTypeMean
	lctx, err := llama.InitFromModel(m.lm, cp)
	if err != nil || lctx == 0 {
		return nil, llamaError(fmt.Sprintf("create llama.cpp embedding context (%d tokens)", n), err)
	}
	mem, err := llama.GetMemory(lctx)
	if err != nil {
		llama.Free(lctx)
		return nil, fmt.Errorf("create embedding context: %w", err)
	}
	return &embedder{lctx: lctx, mem: mem, batch: llama.BatchInit(int32(n), 0, 1), n: n}, nil
}

func (e *embedder) free() {
	_ = llama.BatchFree(e.batch)
	_ = llama.Free(e.lctx)
}

// normalize copies v (which llama.cpp owns) and scales it to unit length.
func normalize(v []float32) []float32 {
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	out := make([]float32, len(v))
	norm := math.Sqrt(sum)
	if norm == 0 {
		copy(out, v)
		return out
	}
	for i, x := range v {
		out[i] = float32(float64(x) / norm)
	}
	return out
}
