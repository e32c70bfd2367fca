package synth

import (
	"fmt"
	"os"

	"github.com/ember-edge/ember/daemon/gguf"
	"github.com/ember-edge/ember/internal/durable"
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

	return durable.WriteFile(path, 0o644, func(f *os.File) error {
		return gguf.Write(f, spec.metadata(), tensors)
	})
}
