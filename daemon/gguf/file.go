package gguf

import (
	"fmt"
	"io"
	"os"
)

// DefaultAlignment is the alignment of tensor data when a file sets no
// general.alignment.
const DefaultAlignment = 32

// KeyAlignment is the metadata key that sets the alignment of tensor data.
const KeyAlignment = "general.alignment"

// File is a parsed GGUF file: its metadata and tensor table. It holds no
// tensor data; DataOffset and each tensor's Offset say where that is.
// A File is immutable and safe for concurrent use.
type File struct {
	// Version is the GGUF version, 2 or 3.
	Version uint32
	// Alignment is the alignment of tensor data, from general.alignment.
	Alignment uint32
	// Size is the file's size in bytes.
	Size int64
	// DataOffset is where the tensor data section starts.
	DataOffset int64

	kvs     []KV
	index   map[string]int // key → index in kvs
	tensors []TensorInfo
}

// Open reads and validates the GGUF file at path, as Read does.
func Open(path string) (*File, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	defer fd.Close()
	return OpenFile(fd)
}

// OpenFile reads and validates the open file fd, as Read does. A caller
// that hands the same descriptor on (to llama.cpp, say) uses exactly the
// bytes that were validated, whatever happens to the path meanwhile.
func OpenFile(fd *os.File) (*File, error) {
	path := fd.Name()
	st, err := fd.Stat()
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("gguf: %s: not a regular file: %w", path, ErrNotGGUF)
	}
	f, err := parse(fd, st.Size())
	if err == nil {
		err = f.validate()
	}
	if err != nil {
		return nil, fmt.Errorf("gguf: %s: %w", path, err)
	}
	return f, nil
}

// Read parses the GGUF file of size bytes in r and validates it: first
// as a GGUF file (Parse), then as a model llama.cpp can load (Validate).
// It reads the header, metadata and tensor table, never the tensor data.
func Read(r io.ReaderAt, size int64) (*File, error) {
	f, err := parse(r, size)
	if err == nil {
		err = f.validate()
	}
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	return f, nil
}

// Parse parses and validates the GGUF structure of the file of size bytes
// in r, without the model-level checks of Validate: for inspecting files
// llama.cpp cannot run, such as a model of an unsupported architecture.
func Parse(r io.ReaderAt, size int64) (*File, error) {
	f, err := parse(r, size)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	return f, nil
}

// Validate checks that the file is a model llama.cpp can load without
// crashing: a supported general.architecture, and tokenizer metadata
// whose arrays agree and whose special token ids are in range.
func (f *File) Validate() error {
	if err := f.validate(); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	return nil
}

// KVs returns the metadata in file order. The slice is shared: callers
// must not modify it.
func (f *File) KVs() []KV { return f.kvs }

// Get returns the value of key.
func (f *File) Get(key string) (Value, bool) {
	i, ok := f.index[key]
	if !ok {
		return Value{}, false
	}
	return f.kvs[i].Value, true
}

// String returns the string value of key; false if it is absent or not a
// string.
func (f *File) String(key string) (string, bool) {
	v, _ := f.Get(key)
	return v.Text()
}

// Uint returns the integer value of key as a uint64 (see Value.Uint).
func (f *File) Uint(key string) (uint64, bool) {
	v, _ := f.Get(key)
	return v.Uint()
}

// Int returns the integer value of key as an int64 (see Value.Int).
func (f *File) Int(key string) (int64, bool) {
	v, _ := f.Get(key)
	return v.Int()
}

// Float returns the floating-point value of key.
func (f *File) Float(key string) (float64, bool) {
	v, _ := f.Get(key)
	return v.Float()
}

// Bool returns the bool value of key.
func (f *File) Bool(key string) (bool, bool) {
	v, _ := f.Get(key)
	return v.Bool()
}

// Strings returns the string array value of key.
func (f *File) Strings(key string) ([]string, bool) {
	v, _ := f.Get(key)
	return v.Strings()
}

// Tensors returns the tensor table in file order. The slice is shared:
// callers must not modify it.
func (f *File) Tensors() []TensorInfo { return f.tensors }

// Tensor returns the tensor named name.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	for _, t := range f.tensors {
		if t.Name == name {
			return t, true
		}
	}
	return TensorInfo{}, false
}

// TensorData returns a reader of the data of t, a tensor of f, from r,
// the file f was read from.
func (f *File) TensorData(r io.ReaderAt, t TensorInfo) *io.SectionReader {
	return io.NewSectionReader(r, f.DataOffset+int64(t.Offset), int64(t.Size))
}
