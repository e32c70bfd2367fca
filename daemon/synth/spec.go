package synth

import (
	"errors"
	"fmt"

	"github.com/ember-edge/ember/daemon/gguf"
)

// ChatML is the chat template synthetic models carry by default: the
// format of Qwen and SmolLM, which llama.cpp recognises by its
// <|im_start|> marker and renders without a Jinja engine.
const ChatML = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"

// Spec describes a synthetic model. Shapes are llama's: HeadCount query
// heads of EmbeddingLength/HeadCount dimensions, sharing HeadCountKV
// key/value heads (grouped-query attention), and a SwiGLU feed-forward
// block of FeedForwardLength.
type Spec struct {
	// Name is general.name; empty means "ember-synth".
	Name string
	// License is general.license; empty means "MIT".
	License string
	// ChatTemplate is tokenizer.chat_template; empty means ChatML.
	ChatTemplate string

	EmbeddingLength   int
	BlockCount        int
	HeadCount         int
	HeadCountKV       int
	FeedForwardLength int
	ContextLength     int

	// Seed selects the random weights: the same Spec, seed included,
	// always gives the same file.
	Seed uint64
	// FileType is the type of the weight matrices: gguf.FileTypeF16 or
	// gguf.FileTypeF32 (the zero value). Norm weights are always F32, as
	// llama.cpp's converter writes them. Use llamacpp.Quantize for anything
	// smaller.
	FileType gguf.FileType
}

// Tiny is a model of about a megabyte that loads and generates in
// milliseconds: for tests and the demo of `make run`.
var Tiny = Spec{
	Name:              "ember-synth-tiny",
	EmbeddingLength:   64,
	BlockCount:        2,
	HeadCount:         4,
	HeadCountKV:       2,
	FeedForwardLength: 128,
	ContextLength:     512,
	Seed:              1,
	FileType:          gguf.FileTypeF16,
}

// Bench has the shapes of SmolLM2-135M (576 dimensions, 30 blocks, 9
// query and 3 key/value heads of 64 dimensions, feed-forward 1536,
// context 2048), so that benchmarks do a real small model's work per
// token, but synth's vocabulary, so its embedding matrices are smaller:
// about 110M parameters, 220 MB at F16.
//
// 576 is not a multiple of 256, the block size of the K-quants, so when
// quantizing Bench to a K-quant file type (Q4_K_M, Q6_K …) llama.cpp
// falls back to a 32-element block type for the tensors whose rows are
// 576 long (Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0, Q2_K and Q3_K →
// IQ4_NL) and only ffn_down, whose rows are 1536 long, gets the K-quant.
// Real SmolLM2 files are quantized the same way. Q8_0, Q5_0 and Q4_0 fit
// every tensor.
var Bench = Spec{
	Name:              "ember-synth-bench",
	EmbeddingLength:   576,
	BlockCount:        30,
	HeadCount:         9,
	HeadCountKV:       3,
	FeedForwardLength: 1536,
	ContextLength:     2048,
	Seed:              1,
	FileType:          gguf.FileTypeF16,
}

// withDefaults fills the optional string fields.
func (s Spec) withDefaults() Spec {
	if s.Name == "" {
		s.Name = "ember-synth"
	}
	if s.License == "" {
		s.License = "MIT"
	}
	if s.ChatTemplate == "" {
		s.ChatTemplate = ChatML
	}
	return s
}

// Validate reports every reason llama.cpp could not run a model of this
// shape, joined; nil if there is none.
func (s Spec) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, f := range []struct {
		name string
		v    int
	}{
		{"embedding length", s.EmbeddingLength},
		{"block count", s.BlockCount},
		{"head count", s.HeadCount},
		{"KV head count", s.HeadCountKV},
		{"feed-forward length", s.FeedForwardLength},
		{"context length", s.ContextLength},
	} {
		if f.v < 1 {
			bad("%s is %d, must be positive", f.name, f.v)
		}
	}
	if s.BlockCount > 512 {
		bad("block count is %d, more than llama.cpp's 512", s.BlockCount)
	}
	if s.HeadCount > 0 && s.EmbeddingLength%s.HeadCount != 0 {
		bad("embedding length %d is not a multiple of the head count %d", s.EmbeddingLength, s.HeadCount)
	}
	if s.HeadCount > 0 && s.EmbeddingLength > 0 && s.EmbeddingLength%s.HeadCount == 0 && s.HeadDim()%2 != 0 {
		bad("head dimension %d is odd; rotary embeddings rotate pairs", s.HeadDim())
	}
	if s.HeadCountKV > 0 && s.HeadCount%s.HeadCountKV != 0 {
		bad("head count %d is not a multiple of the KV head count %d", s.HeadCount, s.HeadCountKV)
	}
	if s.FileType != gguf.FileTypeF16 && s.FileType != gguf.FileTypeF32 {
		bad("file type %s: synth writes F16 or F32; use llamacpp.Quantize for others", s.FileType)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidSpec, errors.Join(errs...))
}

// HeadDim returns the dimension of one attention head.
func (s Spec) HeadDim() int {
	if s.HeadCount == 0 {
		return 0
	}
	return s.EmbeddingLength / s.HeadCount
}

// VocabSize returns the number of tokens in synth's vocabulary, the same
// for every Spec.
func VocabSize() int { return len(vocabulary().tokens) }

// ParameterCount returns the number of weights in a model of this spec.
func (s Spec) ParameterCount() uint64 {
	var n uint64
	for _, t := range s.layout() {
		n += t.elements()
	}
	return n
}

// TensorBytes returns the bytes of tensor data in a model of this spec,
// before padding.
func (s Spec) TensorBytes() uint64 {
	var n uint64
	for _, t := range s.layout() {
		size, _ := gguf.TensorSize(t.typ, t.shape)
		n += size
	}
	return n
}
