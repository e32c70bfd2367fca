package gguf

// Metadata is the summary of a model that ember shows and logs: what it
// is, how big, how quantized, and the hyperparameters that decide how
// much memory it needs.
type Metadata struct {
	Architecture string `json:"architecture"`
	Name         string `json:"name,omitempty"`
	License      string `json:"license,omitempty"`
	Description  string `json:"description,omitempty"`

	// FileType is general.file_type, llama.cpp's llama_ftype. When the
	// key is absent it is guessed from the dominant tensor type, as
	// llama.cpp does, and FileTypeName ends in " (guessed)".
	FileType     uint32 `json:"file_type"`
	FileTypeName string `json:"file_type_name"`
	// Quantization is the tensor type holding the most bytes, e.g.
	// "Q4_K" for a Q4_K_M file.
	Quantization string `json:"quantization"`

	// ParameterCount is the number of elements in all tensors.
	ParameterCount uint64 `json:"parameter_count"`
	TensorCount    int    `json:"tensor_count"`
	TensorBytes    uint64 `json:"tensor_bytes"`

	ContextLength     uint64 `json:"context_length,omitempty"`
	EmbeddingLength   uint64 `json:"embedding_length,omitempty"`
	BlockCount        uint64 `json:"block_count,omitempty"`
	HeadCount         uint64 `json:"head_count,omitempty"`
	HeadCountKV       uint64 `json:"head_count_kv,omitempty"`
	FeedForwardLength uint64 `json:"feed_forward_length,omitempty"`

	VocabSize      int    `json:"vocab_size,omitempty"`
	TokenizerModel string `json:"tokenizer_model,omitempty"`
	ChatTemplate   string `json:"chat_template,omitempty"`
}

// Metadata summarises the file. Missing keys leave their fields zero.
func (f *File) Metadata() Metadata {
	arch, _ := f.String(KeyArchitecture)
	m := Metadata{Architecture: arch, TensorCount: len(f.tensors)}
	m.Name, _ = f.String(KeyName)
	m.License, _ = f.String(KeyLicense)
	m.Description, _ = f.String(KeyDescription)
	m.TokenizerModel, _ = f.String(KeyTokenizerModel)
	m.ChatTemplate, _ = f.String(KeyChatTemplate)

	bytesByType := make(map[GGMLType]uint64)
	for _, t := range f.tensors {
		m.ParameterCount += t.Elements()
		m.TensorBytes += t.Size
		bytesByType[t.Type] += t.Size
	}
	dominant, most := GGMLType(0), uint64(0)
	for typ, n := range bytesByType {
		// Ties go to the lower type number, so the result does not
		// depend on map order.
		if n > most || n == most && typ < dominant {
			dominant, most = typ, n
		}
	}
	if len(f.tensors) > 0 {
		m.Quantization = dominant.String()
	}
	if ft, ok := f.Uint(KeyFileType); ok && ft <= 0xFFFFFFFF {
		m.FileType = uint32(ft)
		m.FileTypeName = FileType(ft).String()
	} else if ft, ok := guessFileType(dominant); ok && len(f.tensors) > 0 {
		m.FileType = uint32(ft)
		m.FileTypeName = ft.String() + " (guessed)"
	}

	if arch != "" {
		m.ContextLength = f.hparam(arch, "context_length")
		m.EmbeddingLength = f.hparam(arch, "embedding_length")
		m.BlockCount = f.hparam(arch, "block_count")
		m.HeadCount = f.hparam(arch, "attention.head_count")
		m.HeadCountKV = f.hparam(arch, "attention.head_count_kv")
		m.FeedForwardLength = f.hparam(arch, "feed_forward_length")
	}
	if tokens, ok := f.Strings(KeyTokens); ok {
		m.VocabSize = len(tokens)
	} else if arch != "" {
		m.VocabSize = int(min(f.hparam(arch, "vocab_size"), 1<<31-1))
	}
	return m
}

// hparam returns an architecture hyperparameter. Some models give a
// per-layer array instead of a number (OpenELM's head counts, Gemma 3n's
// feed-forward lengths); for those it returns the largest entry, the one
// that sizes buffers.
func (f *File) hparam(arch, name string) uint64 {
	v, ok := f.Get(ArchKey(arch, name))
	if !ok {
		return 0
	}
	if n, ok := v.Uint(); ok {
		return n
	}
	var most uint64
	switch xs := v.Any().(type) {
	case []uint32:
		for _, x := range xs {
			most = max(most, uint64(x))
		}
	case []int32:
		for _, x := range xs {
			most = max(most, uint64(max(x, 0)))
		}
	case []uint64:
		for _, x := range xs {
			most = max(most, x)
		}
	case []int64:
		for _, x := range xs {
			most = max(most, uint64(max(x, 0)))
		}
	}
	return most
}

// KVSummary renders every metadata value for display, arrays summarised
// ("[32000 strings]") and long strings cut (see Value.String).
func (f *File) KVSummary() map[string]string {
	m := make(map[string]string, len(f.kvs))
	for _, kv := range f.kvs {
		m[kv.Key] = kv.Value.String()
	}
	return m
}
