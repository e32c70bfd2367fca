package gguf_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/ember-edge/ember/daemon/gguf"
)

// TestRoundTrip writes every value type, as scalar and array, and tensors
// of several types, and reads back the same metadata, in order, and the
// same data at the offsets the reader computes.
func TestRoundTrip(t *testing.T) {
	kvs := modelKVs(nil)
	kvs = append(kvs,
		gguf.KV{Key: "t.u8", Value: gguf.Uint8(200)},
		gguf.KV{Key: "t.i8", Value: gguf.Int8(-100)},
		gguf.KV{Key: "t.u16", Value: gguf.Uint16(60000)},
		gguf.KV{Key: "t.i16", Value: gguf.Int16(-30000)},
		gguf.KV{Key: "t.u32", Value: gguf.Uint32(4000000000)},
		gguf.KV{Key: "t.i32", Value: gguf.Int32(-2000000000)},
		gguf.KV{Key: "t.f32", Value: gguf.Float32(3.25)},
		gguf.KV{Key: "t.bool", Value: gguf.Bool(true)},
		gguf.KV{Key: "t.str", Value: gguf.String("héllo\x00world")},
		gguf.KV{Key: "t.u64", Value: gguf.Uint64(math.MaxUint64)},
		gguf.KV{Key: "t.i64", Value: gguf.Int64(math.MinInt64)},
		gguf.KV{Key: "t.f64", Value: gguf.Float64(math.Pi)},
		gguf.KV{Key: "t.nan", Value: gguf.Float32(float32(math.Inf(-1)))},
		gguf.KV{Key: "a.u8", Value: gguf.Array([]uint8{1, 2, 255})},
		gguf.KV{Key: "a.i8", Value: gguf.Array([]int8{-1, 0, 1})},
		gguf.KV{Key: "a.u16", Value: gguf.Array([]uint16{1, 65535})},
		gguf.KV{Key: "a.i16", Value: gguf.Array([]int16{-32768, 32767})},
		gguf.KV{Key: "a.u32", Value: gguf.Array([]uint32{7})},
		gguf.KV{Key: "a.i32", Value: gguf.Array([]int32{-7, 7})},
		gguf.KV{Key: "a.f32", Value: gguf.Array([]float32{0.5, -0.25})},
		gguf.KV{Key: "a.bool", Value: gguf.Array([]bool{true, false, true})},
		gguf.KV{Key: "a.str", Value: gguf.Array([]string{"", "x", "▁word"})},
		gguf.KV{Key: "a.u64", Value: gguf.Array([]uint64{1 << 63})},
		gguf.KV{Key: "a.i64", Value: gguf.Array([]int64{-1 << 63})},
		gguf.KV{Key: "a.f64", Value: gguf.Array([]float64{1e300})},
		gguf.KV{Key: "a.empty", Value: gguf.Array([]uint32{})},
	)
	data := write(t, kvs, modelTensors())
	f, err := read(data)
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != gguf.Version || f.Alignment != gguf.DefaultAlignment {
		t.Errorf("version %d alignment %d", f.Version, f.Alignment)
	}
	got := f.KVs()
	if len(got) != len(kvs) {
		t.Fatalf("%d kvs, want %d", len(got), len(kvs))
	}
	for i, kv := range kvs {
		if got[i].Key != kv.Key || !reflect.DeepEqual(got[i].Value.Any(), kv.Value.Any()) {
			t.Errorf("kv %d: got %s (%T), want %s (%T)", i, got[i], got[i].Value.Any(), kv, kv.Value.Any())
		}
	}
	r := bytes.NewReader(data)
	for i, want := range modelTensors() {
		ti := f.Tensors()[i]
		if ti.Name != want.Name || ti.Type != want.Type || !reflect.DeepEqual(ti.Shape, want.Shape) {
			t.Errorf("tensor %d: got %+v, want %s %s %v", i, ti, want.Name, want.Type, want.Shape)
		}
		var buf bytes.Buffer
		want.WriteData(&buf)
		b, err := io.ReadAll(f.TensorData(r, ti))
		if err != nil || !bytes.Equal(b, buf.Bytes()) {
			t.Errorf("tensor %d %q: data differs (%v)", i, ti.Name, err)
		}
	}
}

// TestWriteLayout checks the padding Write puts between tensors against
// an alignment other than the default.
func TestWriteLayout(t *testing.T) {
	kvs := modelKVs(map[string]gguf.Value{"general.alignment": gguf.Uint32(64)})
	data := write(t, kvs, modelTensors())
	f, err := read(data)
	if err != nil {
		t.Fatal(err)
	}
	if f.Alignment != 64 || f.DataOffset%64 != 0 {
		t.Fatalf("alignment %d, data offset %d", f.Alignment, f.DataOffset)
	}
	var next uint64
	for _, ti := range f.Tensors() {
		if ti.Offset != next {
			t.Errorf("tensor %q at %d, want %d", ti.Name, ti.Offset, next)
		}
		next = (ti.Offset + ti.Size + 63) &^ 63
	}
	if want := f.DataOffset + int64(next); int64(len(data)) != want {
		t.Errorf("file is %d bytes, want %d (padded after the last tensor too)", len(data), want)
	}
}

func TestWriteRejects(t *testing.T) {
	ok := modelTensors()
	short := gguf.TensorData{Name: "short", Type: gguf.GGMLTypeF32, Shape: []uint64{4},
		WriteData: func(w io.Writer) error { _, err := w.Write(make([]byte, 15)); return err }}
	failing := gguf.TensorData{Name: "failing", Type: gguf.GGMLTypeF32, Shape: []uint64{4},
		WriteData: func(io.Writer) error { return errors.New("disk on fire") }}
	tensor := func(name string, typ gguf.GGMLType, shape ...uint64) []gguf.TensorData {
		return []gguf.TensorData{{Name: name, Type: typ, Shape: shape, WriteData: ok[0].WriteData}}
	}
	tests := []struct {
		name    string
		kvs     []gguf.KV
		tensors []gguf.TensorData
		msg     string
	}{
		{"empty key", []gguf.KV{{Key: "", Value: gguf.Uint8(1)}}, nil, "empty or duplicate key"},
		{"duplicate key", []gguf.KV{{Key: "a", Value: gguf.Uint8(1)}, {Key: "a", Value: gguf.Uint8(2)}}, nil, "duplicate"},
		{"zero value", []gguf.KV{{Key: "a"}}, nil, "invalid (zero) value"},
		{"bad alignment", []gguf.KV{{Key: "general.alignment", Value: gguf.Uint32(48)}}, nil, "power of two"},
		{"alignment type", []gguf.KV{{Key: "general.alignment", Value: gguf.Uint64(32)}}, nil, "uint32"},
		{"duplicate tensor", nil, append(tensor("a", gguf.GGMLTypeF32, 4), tensor("a", gguf.GGMLTypeF32, 4)...), "duplicate name"},
		{"long name", nil, tensor(strings.Repeat("n", 64), gguf.GGMLTypeF32, 4), "name must be"},
		{"no dims", nil, tensor("a", gguf.GGMLTypeF32), "0 dimensions"},
		{"zero dim", nil, tensor("a", gguf.GGMLTypeF32, 0), "dimension 0 is 0"},
		{"unknown type", nil, tensor("a", 77, 4), "unknown"},
		{"partial block", nil, tensor("a", gguf.GGMLTypeQ4_K, 128), "block size 256"},
		{"no data func", nil, []gguf.TensorData{{Name: "a", Type: gguf.GGMLTypeF32, Shape: []uint64{1}}}, "no WriteData"},
		{"short data", nil, []gguf.TensorData{short}, "wrote 15 bytes of data, want 16"},
		{"data error", nil, []gguf.TensorData{failing}, "disk on fire"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := gguf.Write(io.Discard, tc.kvs, tc.tensors)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Write: %v, want an error mentioning %q", err, tc.msg)
			}
		})
	}
}

// failWriter fails after n bytes, like a full disk.
type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		n := w.n
		w.n = 0
		return n, errors.New("no space left on device")
	}
	w.n -= len(p)
	return len(p), nil
}

func TestWriteReportsWriterErrors(t *testing.T) {
	size := len(validModel(t))
	for _, n := range []int{0, 100, size - 10} {
		err := gguf.Write(&failWriter{n: n}, modelKVs(nil), modelTensors())
		if err == nil || !strings.Contains(err.Error(), "no space left") {
			t.Errorf("after %d bytes: %v, want the writer's error", n, err)
		}
	}
}

func TestTensorSize(t *testing.T) {
	tests := []struct {
		typ   gguf.GGMLType
		shape []uint64
		want  uint64
	}{
		{gguf.GGMLTypeF32, []uint64{3, 5}, 60},
		{gguf.GGMLTypeF16, []uint64{576, 3120}, 576 * 3120 * 2},
		{gguf.GGMLTypeQ8_0, []uint64{64, 2}, 4 * 34},
		{gguf.GGMLTypeQ4_K, []uint64{256, 10}, 10 * 144},
		{gguf.GGMLTypeQ6_K, []uint64{1536, 576}, 6 * 576 * 210},
		{gguf.GGMLTypeMXFP4, []uint64{32, 1, 1, 4}, 4 * 17},
		{gguf.GGMLTypeTQ1_0, []uint64{256}, 54},
	}
	for _, tc := range tests {
		got, err := gguf.TensorSize(tc.typ, tc.shape)
		if err != nil || got != tc.want {
			t.Errorf("TensorSize(%s, %v) = %d, %v; want %d", tc.typ, tc.shape, got, err, tc.want)
		}
	}
}
