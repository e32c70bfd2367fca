package engine

import (
	"fmt"

	"github.com/shirou/gopsutil/v4/mem"

	"github.com/ember-edge/ember/daemon/gguf"
	"github.com/ember-edge/ember/internal/bytesize"
)

// computeOverhead approximates llama.cpp's compute buffers and the
// embedding context beyond the KV cache; small next to weights.
const computeOverhead = 64 << 20

func systemAvailableMemory() (uint64, error) {
	vm, err := mem.VirtualMemory()
	if err != nil {
		return 0, fmt.Errorf("read available memory: %w", err)
	}
	return vm.Available, nil
}

// kvCacheBytes estimates the f16 KV cache for n tokens.
func kvCacheBytes(f *gguf.File, meta gguf.Metadata, n int) uint64 {
	arch := meta.Architecture
	heads := max(meta.HeadCount, 1)
	kvHeads := meta.HeadCountKV
	if kvHeads == 0 {
		kvHeads = heads
	}
	keyLen, ok := f.Uint(arch + ".attention.key_length")
	if !ok {
		keyLen = meta.EmbeddingLength / heads
	}
	valLen, ok := f.Uint(arch + ".attention.value_length")
	if !ok {
		valLen = meta.EmbeddingLength / heads
	}
	const f16 = 2
	return uint64(n) * meta.BlockCount * kvHeads * (keyLen + valLen) * f16
}

// admit refuses a load that would not fit in the memory available, rather
// than letting the kernel's OOM killer end the whole appliance.
func admit(f *gguf.File, meta gguf.Metadata, st Settings, opts *Options) error {
	avail, err := opts.AvailableMemory()
	if err != nil {
		return err
	}
	kv := kvCacheBytes(f, meta, st.Context*st.Parallel)
	need := uint64(f.Size) + kv + computeOverhead
	if need+opts.MemoryReserve > avail {
		return fmt.Errorf("%w: the model needs about %s (file %s + KV cache %s for %d tokens) "+
			"but %s is available after keeping %s in reserve; lower the context, "+
			"use a smaller quantization, or free memory",
			ErrInsufficientMemory, bytesize.Size(need), bytesize.Size(uint64(f.Size)), bytesize.Size(kv), st.Context*st.Parallel,
			bytesize.Size(sub(avail, opts.MemoryReserve)), bytesize.Size(opts.MemoryReserve))
	}
	return nil
}

func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}
