package gguf_test

import (
	"bytes"
	"fmt"
	"io"
	"reflect"
	"testing"

	"github.com/ember-edge/ember/daemon/gguf"
)

// FuzzRead feeds Read arbitrary bytes. It must never panic, must fail
// only with one of the sentinel errors, must allocate at most a small
// multiple of the input's size, and what it accepts must be consistent:
// every tensor inside the file, and a file Write reproduces exactly.
func FuzzRead(f *testing.F) {
	f.Add(validModel(f))
	f.Add(write(f, modelKVs(map[string]gguf.Value{"general.alignment": gguf.Uint32(8)}), modelTensors()))
	f.Add(write(f, []gguf.KV{{Key: "general.architecture", Value: gguf.String("llama")}}, nil))
	for _, tc := range malformedCases(f) {
		f.Add(tc.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var file *gguf.File
		var err error
		allocated := allocatedBytes(func() { file, err = read(data) })
		if limit := allocationLimit(len(data)); allocated > limit {
			t.Fatalf("reading %d bytes allocated %d bytes, more than %d", len(data), allocated, limit)
		}
		if err != nil {
			if !wrapsSentinel(err) {
				t.Fatalf("error %q wraps no sentinel", err)
			}
			return
		}
		for _, ti := range file.Tensors() {
			end := file.DataOffset + int64(ti.Offset) + int64(ti.Size)
			if end > int64(len(data)) || ti.Offset%uint64(file.Alignment) != 0 {
				t.Fatalf("accepted tensor %q at [%d, %d) in a file of %d bytes", ti.Name, end-int64(ti.Size), end, len(data))
			}
		}
		_ = file.Metadata()
		_ = file.KVSummary()
		rewriteMatches(t, file, data)
	})
}

// rewriteMatches writes file's metadata and tensors back out with Write
// and reads the result: the same metadata and tensor table must come
// back, so Write and Read agree on the format.
func rewriteMatches(t *testing.T, file *gguf.File, data []byte) {
	r := bytes.NewReader(data)
	tensors := make([]gguf.TensorData, len(file.Tensors()))
	for i, ti := range file.Tensors() {
		tensors[i] = gguf.TensorData{Name: ti.Name, Type: ti.Type, Shape: ti.Shape, WriteData: func(w io.Writer) error {
			_, err := io.Copy(w, file.TensorData(r, ti))
			return err
		}}
	}
	var buf bytes.Buffer
	if err := gguf.Write(&buf, file.KVs(), tensors); err != nil {
		t.Fatalf("Write refused what Read accepted: %v", err)
	}
	again, err := read(buf.Bytes())
	if err != nil {
		t.Fatalf("Read rejected what Write wrote: %v", err)
	}
	if got, want := render(again.KVs()), render(file.KVs()); got != want {
		t.Fatalf("metadata changed through Write and Read:\n%s\n%s", got, want)
	}
	if !reflect.DeepEqual(again.Tensors(), file.Tensors()) {
		t.Fatalf("tensor table changed through Write and Read:\n%+v\n%+v", again.Tensors(), file.Tensors())
	}
}

// render prints kvs with their Go types, exactly enough to compare them:
// unlike reflect.DeepEqual, it finds a NaN equal to itself.
func render(kvs []gguf.KV) string {
	var b bytes.Buffer
	for _, kv := range kvs {
		fmt.Fprintf(&b, "%q %T %v\n", kv.Key, kv.Value.Any(), kv.Value.Any())
	}
	return b.String()
}
