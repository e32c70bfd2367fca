package synth

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"runtime"
	"sync"

	"github.com/ember-edge/ember/daemon/gguf"
)

const (
	// weightStd is the standard deviation of the random matrices: small,
	// like a freshly initialised transformer, so activations stay in
	// range through every block and generation is numerically sane.
	weightStd = 0.02

	// rmsEpsilon and ropeFreqBase are Llama 2's values.
	rmsEpsilon   = 1e-5
	ropeFreqBase = 10000
)

// tensorSpec is one tensor of the model: llama.cpp's name and shape (ne[0]
// first), and whether it is a norm (ones, F32) or a matrix (random).
type tensorSpec struct {
	name  string
	shape []uint64
	typ   gguf.GGMLType
	norm  bool
}

func (t tensorSpec) elements() uint64 {
	n := uint64(1)
	for _, d := range t.shape {
		n *= d
	}
	return n
}

// layout lists the model's tensors as llama.cpp's llama architecture
// loads them (LLM_ARCH_LLAMA's tensor names), in the order its converter
// writes them.
func (s Spec) layout() []tensorSpec {
	embd, ff := uint64(s.EmbeddingLength), uint64(s.FeedForwardLength)
	kv := uint64(s.HeadCountKV * s.HeadDim()) // K and V width with GQA
	nVocab := uint64(VocabSize())
	mat := gguf.GGMLTypeF16
	if s.FileType == gguf.FileTypeF32 {
		mat = gguf.GGMLTypeF32
	}
	matrix := func(name string, shape ...uint64) tensorSpec {
		return tensorSpec{name: name, shape: shape, typ: mat}
	}
	norm := func(name string) tensorSpec {
		return tensorSpec{name: name, shape: []uint64{embd}, typ: gguf.GGMLTypeF32, norm: true}
	}
	ts := []tensorSpec{matrix("token_embd.weight", embd, nVocab)}
	for i := 0; i < s.BlockCount; i++ {
		blk := func(name string) string { return fmt.Sprintf("blk.%d.%s.weight", i, name) }
		ts = append(ts,
			norm(blk("attn_norm")),
			matrix(blk("attn_q"), embd, embd),
			matrix(blk("attn_k"), embd, kv),
			matrix(blk("attn_v"), embd, kv),
			matrix(blk("attn_output"), embd, embd),
			norm(blk("ffn_norm")),
			matrix(blk("ffn_gate"), embd, ff),
			matrix(blk("ffn_up"), embd, ff),
			matrix(blk("ffn_down"), ff, embd),
		)
	}
	return append(ts, norm("output_norm.weight"), matrix("output.weight", embd, nVocab))
}

// metadata returns the model's key/value pairs: what llama.cpp's loader
// requires for the llama architecture and its SPM tokenizer, and the
// descriptive keys ember shows.
func (s Spec) metadata() []gguf.KV {
	v := vocabulary()
	arch := func(name string) string { return gguf.ArchKey("llama", name) }
	u32 := func(n int) gguf.Value { return gguf.Uint32(uint32(n)) }
	return []gguf.KV{
		{Key: gguf.KeyArchitecture, Value: gguf.String("llama")},
		{Key: gguf.KeyName, Value: gguf.String(s.Name)},
		{Key: gguf.KeyDescription, Value: gguf.String("synthetic model with random weights, written by ember's synth package: it generates gibberish")},
		{Key: gguf.KeyLicense, Value: gguf.String(s.License)},
		{Key: gguf.KeyFileType, Value: gguf.Uint32(uint32(s.FileType))},
		{Key: "general.quantization_version", Value: gguf.Uint32(2)},
		{Key: gguf.KeyAlignment, Value: gguf.Uint32(gguf.DefaultAlignment)},
		{Key: arch("vocab_size"), Value: u32(len(v.tokens))},
		{Key: arch("context_length"), Value: u32(s.ContextLength)},
		{Key: arch("embedding_length"), Value: u32(s.EmbeddingLength)},
		{Key: arch("block_count"), Value: u32(s.BlockCount)},
		{Key: arch("feed_forward_length"), Value: u32(s.FeedForwardLength)},
		{Key: arch("rope.dimension_count"), Value: u32(s.HeadDim())},
		{Key: arch("rope.freq_base"), Value: gguf.Float32(ropeFreqBase)},
		{Key: arch("attention.head_count"), Value: u32(s.HeadCount)},
		{Key: arch("attention.head_count_kv"), Value: u32(s.HeadCountKV)},
		{Key: arch("attention.layer_norm_rms_epsilon"), Value: gguf.Float32(rmsEpsilon)},
		{Key: gguf.KeyTokenizerModel, Value: gguf.String("llama")},
		{Key: gguf.KeyTokens, Value: gguf.Array(v.tokens)},
		{Key: gguf.KeyScores, Value: gguf.Array(v.scores)},
		{Key: gguf.KeyTokenTypes, Value: gguf.Array(v.types)},
		{Key: "tokenizer.ggml.bos_token_id", Value: gguf.Uint32(tokenBOS)},
		{Key: "tokenizer.ggml.eos_token_id", Value: gguf.Uint32(tokenEOS)},
		// <|im_end|> ends a ChatML turn. llama.cpp would guess as much
		// from the token's text; saying so is better than a guess.
		{Key: "tokenizer.ggml.eot_token_id", Value: gguf.Uint32(tokenImEnd)},
		{Key: "tokenizer.ggml.unknown_token_id", Value: gguf.Uint32(tokenUnk)},
		{Key: "tokenizer.ggml.add_bos_token", Value: gguf.Bool(true)},
		{Key: "tokenizer.ggml.add_eos_token", Value: gguf.Bool(false)},
		{Key: "tokenizer.ggml.add_space_prefix", Value: gguf.Bool(true)},
		{Key: gguf.KeyChatTemplate, Value: gguf.String(s.ChatTemplate)},
	}
}

// chunkElements is how many weights one generator fills at a time: 256
// KiB of F32. Each chunk has its own random stream, so chunks can be
// generated in parallel and the file still depends only on the spec.
const chunkElements = 64 << 10

// tensorData returns the tensor for gguf.Write, its data generated on the
// fly, calling report with the bytes each chunk adds.
func (s Spec) tensorData(t tensorSpec, report func(n int64)) gguf.TensorData {
	return gguf.TensorData{
		Name:  t.name,
		Type:  t.typ,
		Shape: t.shape,
		WriteData: func(w io.Writer) error {
			return generate(w, t, seedFor(s.Seed, t.name), report)
		},
	}
}

// generate writes t's data to w, filling up to GOMAXPROCS chunks at once
// and writing them in order: a hundred million weights take seconds on
// one core.
func generate(w io.Writer, t tensorSpec, seed uint64, report func(n int64)) error {
	width := 4
	if t.typ == gguf.GGMLTypeF16 {
		width = 2
	}
	total := t.elements()
	chunks := (total + chunkElements - 1) / chunkElements
	bufs := make([][]byte, min(uint64(runtime.GOMAXPROCS(0)), chunks))
	for i := range bufs {
		bufs[i] = make([]byte, chunkElements*width)
	}
	for first := uint64(0); first < chunks; first += uint64(len(bufs)) {
		batch := bufs[:min(uint64(len(bufs)), chunks-first)]
		var wg sync.WaitGroup
		for i := range batch {
			k := first + uint64(i)
			n := min(total-k*chunkElements, chunkElements)
			batch[i] = batch[i][:n*uint64(width)]
			wg.Go(func() { fill(batch[i], t, chunkRNG(seed, k)) })
		}
		wg.Wait()
		for _, b := range batch {
			if _, err := w.Write(b); err != nil {
				return err
			}
			report(int64(len(b)))
		}
	}
	return nil
}

// chunkRNG returns the random stream of chunk k of a tensor.
func chunkRNG(seed, k uint64) *rng {
	return &rng{state: seed ^ (k+1)*0xD1B54A32D192ED03}
}

// fill fills buf with elements of t: ones for norms, small random numbers
// for matrices.
func fill(buf []byte, t tensorSpec, r *rng) {
	switch {
	case t.norm:
		for i := 0; i < len(buf); i += 4 {
			binary.LittleEndian.PutUint32(buf[i:], math.Float32bits(1))
		}
	case t.typ == gguf.GGMLTypeF16:
		for i := 0; i < len(buf); i += 2 {
			binary.LittleEndian.PutUint16(buf[i:], f16Bits(weightStd*r.normal()))
		}
	default:
		for i := 0; i < len(buf); i += 4 {
			binary.LittleEndian.PutUint32(buf[i:], math.Float32bits(weightStd*r.normal()))
		}
	}
}
