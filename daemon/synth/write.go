package synth

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/ember-edge/ember/daemon/gguf"
)

// Write writes a model of spec to path, atomically: into a temporary file
// in the same directory, synced, then renamed over path, so a crash or an
// error never leaves a partial model where a loader could find it.
//
// progress, if not nil, is called on the calling goroutine as tensor data
// is generated, with the bytes done and the total; the last call has
// done == total.
func Write(path string, spec Spec, progress func(done, total int64)) error {
	spec = spec.withDefaults()
	if err := spec.Validate(); err != nil {
		return fmt.Errorf("synth: write %s: %w", path, err)
	}
	if err := write(path, spec, progress); err != nil {
		return fmt.Errorf("synth: write %s: %w", path, err)
	}
	return nil
}

func write(path string, spec Spec, progress func(done, total int64)) error {
	layout := spec.layout()
	total := int64(spec.TensorBytes())
	var done int64
	report := func(n int64) {
		done += n
		if progress != nil {
			progress(done, total)
		}
	}
	tensors := make([]gguf.TensorData, len(layout))
	for i, t := range layout {
		tensors[i] = spec.tensorData(t, report)
	}

	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := gguf.Write(tmp, spec.metadata(), tensors); err != nil {
		return err
	}
	if err := finish(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	committed = true
	// Sync the directory so that the rename survives a power cut.
	return syncDir(dir)
}

// finish makes a fully written temporary file ready to be renamed into
// place: ordinary permissions (CreateTemp makes it 0600), data synced,
// closed.
func finish(tmp *os.File) error {
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	return tmp.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
