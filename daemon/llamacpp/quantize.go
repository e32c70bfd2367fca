package llamacpp

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/ember-edge/ember/daemon/gguf"
	"github.com/ember-edge/ember/internal/durable"
	"github.com/hybridgroup/yzma/pkg/llama"
)

// Quantize writes a copy of the model at in to out, quantized with
// llama.cpp's own quantizer to fileType, named as llama-quantize names it
// ("Q8_0", "Q4_K_M", "Q5_0", "F16" …; "Q4_K" means Q4_K_M). The caller
// must have loaded the libraries with Load.
//
// Both files are validated with package gguf, the input before llama.cpp
// reads it (a malformed model can abort the process), the output before it
// replaces out, which is written atomically like Write's.
//
// K-quants need rows that are a multiple of 256 elements; for tensors
// whose rows are not, llama.cpp quietly uses a 32-element block type
// instead (see synth.Bench).
func Quantize(in, out, fileType string) error {
	if err := quantize(in, out, fileType); err != nil {
		return fmt.Errorf("quantize %s to %s as %s: %w", in, out, fileType, err)
	}
	return nil
}

func quantize(in, out, fileType string) error {
	ft, err := gguf.ParseFileType(fileType)
	if err != nil {
		return fmt.Errorf("%w %q; llama.cpp knows %s", ErrUnknownFileType, fileType,
			strings.Join(gguf.FileTypeNames(), ", "))
	}
	if ft.NeedsImportanceMatrix() {
		return fmt.Errorf("%w: llama.cpp refuses %s without one", ErrNeedsImportanceMatrix, ft)
	}
	if Dir() == "" {
		return fmt.Errorf("%w: call Load first", ErrNotLoaded)
	}
	if _, err := gguf.Open(in); err != nil {
		return err
	}

	dir, base := filepath.Split(out)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	tmp.Close() // llama.cpp opens it by name
	committed := false
	defer func() {
		if !committed {
			os.Remove(tmpName)
		}
	}()

	params := llama.ModelQuantizeDefaultParams()
	params.Ftype = llama.Ftype(ft)
	params.NThread = int32(runtime.NumCPU())
	if status := llama.ModelQuantize(in, tmpName, &params); status != 0 {
		return fmt.Errorf("%w (status %d; llama.cpp's log says why)", ErrQuantizeFailed, status)
	}
	if _, err := gguf.Open(tmpName); err != nil {
		return fmt.Errorf("llama.cpp wrote an invalid file: %w", err)
	}
	f, err := os.OpenFile(tmpName, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := finishFile(f); err != nil {
		return err
	}
	if err := os.Rename(tmpName, out); err != nil {
		return err
	}
	committed = true
	return durable.SyncDir(dir)
}

// finishFile makes a fully written temporary file ready to be renamed
// into place: ordinary permissions, data synced, closed.
func finishFile(f *os.File) error {
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}
