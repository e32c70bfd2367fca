package gguf_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/ember-edge/ember/daemon/gguf"
)

// sentinels are the errors every Read failure must wrap one of.
var sentinels = []error{
	gguf.ErrNotGGUF, gguf.ErrUnsupportedVersion, gguf.ErrTruncated, gguf.ErrCorrupt,
	gguf.ErrUnsupportedTensorType, gguf.ErrUnsupportedArchitecture, gguf.ErrInvalidMetadata,
}

// wrapsSentinel reports whether err wraps one of the package's sentinels.
func wrapsSentinel(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// smallVocab is a tokenizer small enough to keep test files tiny.
var smallVocab = []string{"<unk>", "<s>", "</s>", "▁a", "▁b", "a", "b", "c"}

// modelKVs returns the metadata of a small valid llama model, with edit
// applied: edit may change, add or delete (a zero Value) keys.
func modelKVs(edit map[string]gguf.Value) []gguf.KV {
	kvs := []gguf.KV{
		{Key: "general.architecture", Value: gguf.String("llama")},
		{Key: "general.name", Value: gguf.String("test model")},
		{Key: "llama.block_count", Value: gguf.Uint32(1)},
		{Key: "llama.context_length", Value: gguf.Uint32(128)},
		{Key: "llama.embedding_length", Value: gguf.Uint32(32)},
		{Key: "llama.attention.head_count", Value: gguf.Uint32(4)},
		{Key: "tokenizer.ggml.model", Value: gguf.String("llama")},
		{Key: "tokenizer.ggml.tokens", Value: gguf.Array(smallVocab)},
		{Key: "tokenizer.ggml.scores", Value: gguf.Array(make([]float32, len(smallVocab)))},
		{Key: "tokenizer.ggml.token_type", Value: gguf.Array([]int32{2, 3, 3, 1, 1, 1, 1, 1})},
		{Key: "tokenizer.ggml.bos_token_id", Value: gguf.Uint32(1)},
		{Key: "tokenizer.ggml.eos_token_id", Value: gguf.Uint32(2)},
	}
	done := map[string]bool{}
	var out []gguf.KV
	for _, kv := range kvs {
		done[kv.Key] = true
		if v, ok := edit[kv.Key]; ok {
			if !v.Valid() {
				continue
			}
			kv.Value = v
		}
		out = append(out, kv)
	}
	for k, v := range edit {
		if !done[k] && v.Valid() {
			out = append(out, gguf.KV{Key: k, Value: v})
		}
	}
	return out
}

// pattern returns a tensor whose data is n bytes counting up from seed,
// so tests can check each tensor's bytes come back where they belong.
func pattern(name string, typ gguf.GGMLType, seed byte, shape ...uint64) gguf.TensorData {
	size, err := gguf.TensorSize(typ, shape)
	if err != nil {
		panic(err)
	}
	return gguf.TensorData{Name: name, Type: typ, Shape: shape, WriteData: func(w io.Writer) error {
		_, err := w.Write(patternBytes(seed, size))
		return err
	}}
}

func patternBytes(seed byte, n uint64) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i)
	}
	return b
}

// modelTensors are the small model's tensors: F32, F16 and Q8_0, with
// sizes that are not multiples of the alignment, so padding matters.
func modelTensors() []gguf.TensorData {
	return []gguf.TensorData{
		pattern("token_embd.weight", gguf.GGMLTypeF16, 1, 32, 8),
		pattern("blk.0.attn_norm.weight", gguf.GGMLTypeF32, 2, 5),
		pattern("blk.0.attn_q.weight", gguf.GGMLTypeQ8_0, 3, 32, 3),
		pattern("output_norm.weight", gguf.GGMLTypeF32, 4, 32),
	}
}

// write encodes a file with Write, failing the test on error.
func write(t testing.TB, kvs []gguf.KV, tensors []gguf.TensorData) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := gguf.Write(&buf, kvs, tensors); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// validModel returns the bytes of the small valid model.
func validModel(t testing.TB) []byte {
	return write(t, modelKVs(nil), modelTensors())
}

func read(data []byte) (*gguf.File, error) {
	return gguf.Read(bytes.NewReader(data), int64(len(data)))
}

// raw builds GGUF files byte by byte, for the malformed files Write
// refuses to produce.
type raw struct{ bytes.Buffer }

func (r *raw) u32(x uint32) *raw {
	binary.Write(&r.Buffer, binary.LittleEndian, x)
	return r
}

func (r *raw) u64(x uint64) *raw {
	binary.Write(&r.Buffer, binary.LittleEndian, x)
	return r
}

func (r *raw) str(s string) *raw {
	r.u64(uint64(len(s)))
	r.WriteString(s)
	return r
}

// header writes the magic, version 3 and the counts.
func (r *raw) header(nTensors, nKVs uint64) *raw {
	r.WriteString("GGUF")
	return r.u32(3).u64(nTensors).u64(nKVs)
}

// kvU32 writes a uint32 key/value pair.
func (r *raw) kvU32(key string, v uint32) *raw {
	return r.str(key).u32(uint32(gguf.TypeUint32)).u32(v)
}

// kvStr writes a string key/value pair.
func (r *raw) kvStr(key, v string) *raw {
	return r.str(key).u32(uint32(gguf.TypeString)).str(v)
}

// tensor writes a tensor info.
func (r *raw) tensor(name string, typ gguf.GGMLType, offset uint64, shape ...uint64) *raw {
	r.str(name).u32(uint32(len(shape)))
	for _, d := range shape {
		r.u64(d)
	}
	return r.u32(uint32(typ)).u64(offset)
}

// pad writes zeros to the next multiple of align.
func (r *raw) pad(align int) *raw {
	for r.Len()%align != 0 {
		r.WriteByte(0)
	}
	return r
}

// zeros writes n zero bytes.
func (r *raw) zeros(n int) *raw {
	r.Write(make([]byte, n))
	return r
}

// rawModel writes a minimal valid file with the given tensor infos and
// enough zeroed data after them: the starting point of the tensor-table
// cases, which then break one thing.
func rawModel(tensors func(r *raw), nTensors uint64, dataBytes int) []byte {
	r := &raw{}
	r.header(nTensors, 1).kvStr("general.architecture", "llama")
	tensors(r)
	r.pad(gguf.DefaultAlignment).zeros(dataBytes)
	return r.Bytes()
}

// f32 returns the bytes of little-endian float32s.
func f32(xs ...float32) []byte {
	b := make([]byte, 4*len(xs))
	for i, x := range xs {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// containsAll reports which of subs s lacks.
func missing(s string, subs ...string) []string {
	var out []string
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			out = append(out, sub)
		}
	}
	return out
}

// allocationLimit is the most memory reading n bytes of any input may
// allocate: a small multiple of n, plus a little for fixed costs.
func allocationLimit(n int) uint64 { return 16<<10 + 24*uint64(n) }

// allocatedBytes returns the bytes of heap fn allocates. It uses
// ReadMemStats, which stops the world but counts exactly: the cheaper
// runtime/metrics counter only moves when a whole span is handed out, and
// misses the small allocations that add up here.
func allocatedBytes(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
