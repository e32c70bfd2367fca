package gguf

import (
	"fmt"
	"io"
	"strings"
)

const (
	// Magic is the four bytes every GGUF file starts with.
	Magic = "GGUF"

	// Version is the GGUF version Write produces and the newest Read
	// accepts.
	Version = 3

	// Minimum encoded sizes, used to bound counts by the bytes left
	// before allocating for them: a key/value pair is a length-prefixed
	// non-empty key, a type and at least one byte of value; a tensor
	// info a length-prefixed name, a dimension count, at least one
	// dimension, a type and an offset.
	minKVSize     = 8 + 1 + 4 + 1
	minTensorSize = 8 + 1 + 4 + 8 + 4 + 8
)

// parse reads the header, metadata and tensor table, checking the file's
// structure; errors lack the "gguf: " prefix the exported callers add.
func parse(r io.ReaderAt, size int64) (*File, error) {
	if size < 0 {
		return nil, fmt.Errorf("negative size %d", size)
	}
	d := newDecoder(r, size)
	f := &File{Size: size}
	nTensors, nKVs, err := f.readHeader(d)
	if err != nil {
		return nil, err
	}
	if err := f.readKVs(d, nKVs); err != nil {
		return nil, err
	}
	if err := f.readAlignment(); err != nil {
		return nil, err
	}
	if err := f.readTensorInfos(d, nTensors); err != nil {
		return nil, err
	}
	if err := f.checkLayout(d.pos); err != nil {
		return nil, err
	}
	return f, nil
}

// readHeader reads the magic, version and the two counts.
func (f *File) readHeader(d *decoder) (nTensors, nKVs uint64, err error) {
	if err := checkMagic(d); err != nil {
		return 0, 0, err
	}
	v, err := d.u32("version")
	if err != nil {
		return 0, 0, err
	}
	switch {
	case v == 0:
		return 0, 0, failf(ErrUnsupportedVersion, "version 0 is invalid")
	case v&0xFFFF == 0:
		// A big-endian file's version 3 reads as 0x03000000 here.
		return 0, 0, failf(ErrUnsupportedVersion,
			"version %#x looks byte-swapped: a big-endian GGUF file, which llama.cpp cannot load on this little-endian host", v)
	case v == 1:
		return 0, 0, failf(ErrUnsupportedVersion,
			"GGUF version 1 is no longer supported by llama.cpp; convert the model again with a current llama.cpp")
	case v > Version:
		return 0, 0, failf(ErrUnsupportedVersion, "GGUF version %d is newer than the %d this build supports", v, Version)
	}
	f.Version = v
	if nTensors, err = d.count("tensor count", minTensorSize, maxCount); err != nil {
		return 0, 0, err
	}
	if nKVs, err = d.count("metadata count", minKVSize, maxCount); err != nil {
		return 0, 0, err
	}
	if need := nTensors*minTensorSize + nKVs*minKVSize; need > d.remaining() {
		return 0, 0, failf(ErrTruncated, "%d tensors and %d metadata pairs need at least %d bytes, but the file (size %d) has only %d left",
			nTensors, nKVs, need, d.size, d.remaining())
	}
	return nTensors, nKVs, nil
}

// checkMagic reads the magic, and says what the file is when it is not
// GGUF: the usual culprits are failed downloads and other model formats.
func checkMagic(d *decoder) error {
	if d.size == 0 {
		return failf(ErrTruncated, "file is empty")
	}
	head, _ := d.r.Peek(int(min(d.size, 64)))
	if len(head) < 4 {
		if strings.HasPrefix(Magic, string(head)) {
			return failf(ErrTruncated, "file ends after %d bytes, inside the magic", len(head))
		}
		return failf(ErrNotGGUF, "file of %d bytes starts with %q, not %q", len(head), head, Magic)
	}
	if string(head[:4]) != Magic {
		return failf(ErrNotGGUF, "file starts with %q, not %q%s", head[:4], Magic, sniff(head))
	}
	_, err := d.u32("magic")
	return err
}

// sniff names the format of a file that is not GGUF, from its first
// bytes, as a suffix for the error message.
func sniff(head []byte) string {
	s := string(head)
	lower := strings.ToLower(strings.TrimLeft(s, " \t\r\n\ufeff"))
	switch {
	case strings.HasPrefix(s, "lmgg"):
		return ": a legacy GGML file; convert it to GGUF with llama.cpp's convert_llama_ggml_to_gguf.py"
	case strings.HasPrefix(s, "fmgg"), strings.HasPrefix(s, "tjgg"):
		return fmt.Sprintf(": a legacy %s file; convert it to GGUF with llama.cpp's convert_llama_ggml_to_gguf.py",
			strings.ToUpper(reverse(s[:4])))
	case strings.HasPrefix(s, "FUGG"):
		return ": the magic is byte-swapped"
	case strings.HasPrefix(s, "version https://git-lfs"):
		return ": a Git LFS pointer, not the model itself; fetch it with git lfs pull"
	case strings.HasPrefix(lower, "<!doctype html"), strings.HasPrefix(lower, "<html"):
		return ": an HTML page, probably an error page saved by a failed download"
	case strings.HasPrefix(s, "PK\x03\x04"):
		return ": a zip archive (a PyTorch checkpoint?); convert the model with llama.cpp's convert_hf_to_gguf.py"
	case len(head) >= 9 && head[8] == '{' && head[5] == 0 && head[6] == 0 && head[7] == 0:
		return ": a safetensors file; convert the model with llama.cpp's convert_hf_to_gguf.py"
	case strings.HasPrefix(lower, "{"), strings.HasPrefix(lower, "["):
		return ": a JSON document"
	case isText(head):
		return ": a text file"
	}
	return ""
}

func reverse(s string) string {
	b := []byte(s)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}

// isText reports whether head looks like text: printable ASCII,
// whitespace or UTF-8 beyond ASCII, and no control bytes.
func isText(head []byte) bool {
	for _, c := range head {
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// readKVs reads n key/value pairs, rejecting empty and duplicate keys as
// gguf.cpp does.
func (f *File) readKVs(d *decoder, n uint64) error {
	f.index = make(map[string]int, min(n, 1024))
	f.kvs = make([]KV, 0, min(n, 1024))
	for i := uint64(0); i < n; i++ {
		key, err := d.str("key")
		if err != nil {
			return fmt.Errorf("kv %d: %w", i, err)
		}
		if key == "" {
			return failf(ErrCorrupt, "kv %d: key is empty", i)
		}
		if j, dup := f.index[key]; dup {
			return failf(ErrCorrupt, "kv %d %s: duplicate key (also kv %d)", i, quoteName(key), j)
		}
		v, err := readValue(d)
		if err != nil {
			return fmt.Errorf("kv %d %s: %w", i, quoteName(key), err)
		}
		f.index[key] = len(f.kvs)
		f.kvs = append(f.kvs, KV{Key: key, Value: v})
	}
	return nil
}

// readValue reads a type tag and the value it announces.
func readValue(d *decoder) (Value, error) {
	at := d.pos
	tag, err := d.u32("value type")
	if err != nil {
		return Value{}, err
	}
	t := ValueType(tag)
	if t != TypeArray {
		if t.size() == 0 && t != TypeString {
			return Value{}, failf(ErrCorrupt, "value type %d at offset %d is unknown (GGUF defines 0 to 12)", tag, at)
		}
		return d.value(t, "value")
	}
	at = d.pos
	etag, err := d.u32("array element type")
	if err != nil {
		return Value{}, err
	}
	et := ValueType(etag)
	switch {
	case et == TypeArray:
		return Value{}, failf(ErrCorrupt, "array of arrays at offset %d: GGUF arrays hold scalars only", at)
	case et.size() == 0 && et != TypeString:
		return Value{}, failf(ErrCorrupt, "array element type %d at offset %d is unknown (GGUF defines 0 to 12)", etag, at)
	}
	minSize := et.size()
	if et == TypeString {
		minSize = 8 // each string has its length prefix
	}
	n, err := d.count("array length", minSize, maxArrayLen)
	if err != nil {
		return Value{}, err
	}
	return d.array(et, n, "array")
}

// readAlignment sets f.Alignment from general.alignment, which gguf.cpp
// requires to be a uint32 power of two.
func (f *File) readAlignment() error {
	f.Alignment = DefaultAlignment
	v, ok := f.Get(KeyAlignment)
	if !ok {
		return nil
	}
	a, ok := v.Any().(uint32)
	if !ok {
		return failf(ErrCorrupt, "%s is of type %s, must be uint32", KeyAlignment, v.Type())
	}
	if a == 0 || a&(a-1) != 0 {
		return failf(ErrCorrupt, "%s is %d, must be a non-zero power of two", KeyAlignment, a)
	}
	f.Alignment = a
	return nil
}

// readTensorInfos reads n tensor infos, checking each as gguf.cpp does.
func (f *File) readTensorInfos(d *decoder, n uint64) error {
	names := make(map[string]int, min(n, 4096))
	f.tensors = make([]TensorInfo, 0, min(n, 4096))
	for i := uint64(0); i < n; i++ {
		t, err := readTensorInfo(d)
		if err != nil {
			if t.Name == "" {
				return fmt.Errorf("tensor %d: %w", i, err)
			}
			return fmt.Errorf("tensor %d %s: %w", i, quoteName(t.Name), err)
		}
		if j, dup := names[t.Name]; dup {
			return failf(ErrCorrupt, "tensor %d %s: duplicate tensor name (also tensor %d)", i, quoteName(t.Name), j)
		}
		names[t.Name] = int(i)
		f.tensors = append(f.tensors, t)
	}
	return nil
}

// readTensorInfo reads one tensor info. On error, the returned info
// carries the name if it was read, for the message.
func readTensorInfo(d *decoder) (TensorInfo, error) {
	var t TensorInfo
	name, err := d.str("tensor name")
	if err != nil {
		return t, err
	}
	switch {
	case name == "":
		return t, failf(ErrCorrupt, "name is empty")
	case len(name) > MaxNameLen:
		return t, failf(ErrCorrupt, "name %s is %d bytes, more than ggml's %d", quoteName(name), len(name), MaxNameLen)
	case strings.IndexByte(name, 0) >= 0:
		// ggml stores names as C strings: two names differing only
		// after a NUL would be the same tensor to llama.cpp.
		return t, failf(ErrCorrupt, "name %s contains a NUL byte", quoteName(name))
	}
	t.Name = name
	nd, err := d.u32("dimension count")
	if err != nil {
		return t, err
	}
	if nd < 1 || nd > MaxDims {
		return t, failf(ErrCorrupt, "has %d dimensions, want 1 to %d", nd, MaxDims)
	}
	t.Shape = make([]uint64, nd)
	for j := range t.Shape {
		if t.Shape[j], err = d.u64("dimension"); err != nil {
			return t, err
		}
	}
	typ, err := d.u32("tensor type")
	if err != nil {
		return t, err
	}
	t.Type = GGMLType(typ)
	if t.Offset, err = d.u64("tensor offset"); err != nil {
		return t, err
	}
	t.Size, err = tensorSize(t.Type, t.Shape)
	return t, err
}

// checkLayout places the data section after the tensor table and checks
// every tensor's offset against the layout gguf.cpp requires: tensor i
// starts where tensor i-1 ends, padded to the alignment, the first at 0.
// gguf.cpp rejects any other offset; llama.cpp's loader then also
// requires each tensor's data to lie within the file.
func (f *File) checkLayout(tableEnd uint64) error {
	align := uint64(f.Alignment)
	dataOffset := tableEnd
	if len(f.tensors) > 0 {
		// gguf.cpp pads to the alignment only when there are tensors.
		dataOffset, _ = padTo(tableEnd, align) // tableEnd ≤ size: no overflow
		if dataOffset > uint64(f.Size) {
			return failf(ErrTruncated, "tensor data section starts at offset %d (after the tensor table, padded to alignment %d), past the end of the file (size %d)",
				dataOffset, align, f.Size)
		}
	}
	f.DataOffset = int64(dataOffset)
	var expect uint64
	for i, t := range f.tensors {
		where := func() string { return fmt.Sprintf("tensor %d %s", i, quoteName(t.Name)) }
		if t.Offset != expect {
			switch {
			case t.Offset%align != 0:
				return failf(ErrCorrupt, "%s: offset %d is not a multiple of the alignment %d", where(), t.Offset, align)
			case t.Offset < expect:
				return failf(ErrCorrupt, "%s: data at offset %d overlaps the previous tensors' data, which ends at %d",
					where(), t.Offset, expect)
			default:
				return failf(ErrCorrupt, "%s: offset %d, want %d (each tensor's data must follow the previous one's, padded to the alignment %d)",
					where(), t.Offset, expect, align)
			}
		}
		// expect ≤ size + align, and t.Size < 2^63: no overflow below.
		start := dataOffset + t.Offset
		end := start + t.Size
		if end > uint64(f.Size) || end < start {
			return failf(ErrTruncated, "%s: data [%d, %d) extends past end of file (size %d)", where(), start, end, f.Size)
		}
		padded, _ := padTo(t.Size, align)
		expect += padded
	}
	return nil
}

// quoteName quotes a key or tensor name for a message, cutting a long
// one: a hostile file's names can be a gigabyte long.
func quoteName(s string) string {
	const maxShown = 80
	if len(s) <= maxShown {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q…", s[:maxShown])
}
