package gguf

import (
	"encoding/binary"
	"fmt"
)

// Metadata keys ember reads. Keys under the architecture's own prefix,
// such as "llama.context_length", are built with ArchKey.
const (
	KeyArchitecture   = "general.architecture"
	KeyName           = "general.name"
	KeyLicense        = "general.license"
	KeyDescription    = "general.description"
	KeyFileType       = "general.file_type"
	KeyTokenizerModel = "tokenizer.ggml.model"
	KeyTokens         = "tokenizer.ggml.tokens"
	KeyScores         = "tokenizer.ggml.scores"
	KeyTokenTypes     = "tokenizer.ggml.token_type"
	KeyMerges         = "tokenizer.ggml.merges"
	KeyChatTemplate   = "tokenizer.chat_template"
	// KeyPrecompiledCharsmap is a T5 (unigram) tokenizer's normalisation
	// table: a little-endian uint32 blob size, the blob, then the table.
	KeyPrecompiledCharsmap = "tokenizer.ggml.precompiled_charsmap"
)

// ArchKey returns the key of an architecture-specific hyperparameter,
// e.g. ArchKey("llama", "context_length") is "llama.context_length".
func ArchKey(arch, name string) string { return arch + "." + name }

// specialTokenKeys are the tokenizer keys that hold token ids, and whether
// an id out of range is refused. llama.cpp only warns about one and falls
// back to a default. For the ids generation depends on (BOS, EOS, end of
// turn, unknown) that means text that never stops or an arbitrary first
// token, so ember refuses the file; for the rest (padding, FIM, …) real
// converters do write ids one past the vocabulary, so those are tolerated.
var specialTokenKeys = []struct {
	key    string
	strict bool
}{
	{"tokenizer.ggml.bos_token_id", true},
	{"tokenizer.ggml.eos_token_id", true},
	{"tokenizer.ggml.eot_token_id", true},
	{"tokenizer.ggml.eom_token_id", true},
	{"tokenizer.ggml.unknown_token_id", true},
	{"tokenizer.ggml.seperator_token_id", false}, // sic: llama.cpp's spelling
	{"tokenizer.ggml.padding_token_id", false},
	{"tokenizer.ggml.cls_token_id", false},
	{"tokenizer.ggml.mask_token_id", false},
	{"tokenizer.ggml.prefix_token_id", false},
	{"tokenizer.ggml.suffix_token_id", false},
	{"tokenizer.ggml.middle_token_id", false},
	{"tokenizer.ggml.fim_pre_token_id", false},
	{"tokenizer.ggml.fim_suf_token_id", false},
	{"tokenizer.ggml.fim_mid_token_id", false},
	{"tokenizer.ggml.fim_pad_token_id", false},
	{"tokenizer.ggml.fim_rep_token_id", false},
	{"tokenizer.ggml.fim_sep_token_id", false},
}

// validate runs the model-level checks; see Validate.
func (f *File) validate() error {
	if err := f.validateArchitecture(); err != nil {
		return err
	}
	arch, _ := f.String(KeyArchitecture)
	if err := f.validateHParams(arch); err != nil {
		return err
	}
	return f.validateTokenizer()
}

func (f *File) validateArchitecture() error {
	v, ok := f.Get(KeyArchitecture)
	if !ok {
		return failf(ErrInvalidMetadata, "%s is missing", KeyArchitecture)
	}
	arch, ok := v.Text()
	if !ok {
		return failf(ErrInvalidMetadata, "%s is of type %s, must be string", KeyArchitecture, v.Type())
	}
	if !SupportedArchitecture(arch) {
		return failf(ErrUnsupportedArchitecture, "architecture %s is not one llama.cpp implements", quoteName(arch))
	}
	return nil
}

const (
	// maxLayers and maxExperts are llama.cpp's LLAMA_MAX_LAYERS and
	// LLAMA_MAX_EXPERTS.
	maxLayers  = 512
	maxExperts = 512
)

// ropeScalingTypes are the values of <arch>.rope.scaling.type llama.cpp
// knows; any other makes it abort.
var ropeScalingTypes = map[string]bool{"none": true, "linear": true, "yarn": true, "longrope": true}

// validateHParams checks the hyperparameters that llama.cpp's
// load_hparams asserts on (GGML_ASSERT aborts the process) instead of
// returning an error, for every architecture. Keys of the wrong type are
// left alone: llama.cpp reports those as errors itself.
func (f *File) validateHParams(arch string) error {
	key := func(name string) string { return ArchKey(arch, name) }
	blocks, hasBlocks := f.Uint(key("block_count"))
	if hasBlocks && (blocks == 0 || blocks > maxLayers) {
		return failf(ErrInvalidMetadata, "%s is %d, want 1 to %d", key("block_count"), blocks, maxLayers)
	}
	if nextn, ok := f.Uint(key("nextn_predict_layers")); ok && hasBlocks && nextn > blocks {
		return failf(ErrInvalidMetadata, "%s is %d, more than the %d blocks", key("nextn_predict_layers"), nextn, blocks)
	}
	if s, ok := f.String(key("rope.scaling.type")); ok && !ropeScalingTypes[s] {
		return failf(ErrInvalidMetadata, "%s is %s, want none, linear, yarn or longrope", key("rope.scaling.type"), quoteName(s))
	}
	return f.validateExperts(arch)
}

// validateExperts checks the mixture-of-experts counts as load_hparams
// does.
func (f *File) validateExperts(arch string) error {
	key := func(name string) string { return ArchKey(arch, name) }
	experts, _ := f.Uint(key("expert_count"))
	used := f.hparam(arch, "expert_used_count") // may be per layer
	groups, _ := f.Uint(key("expert_group_count"))
	groupsUsed, _ := f.Uint(key("expert_group_used_count"))
	if (arch == "hunyuan_vl" || arch == "hunyuan-dense") && experts <= 1 {
		return nil // llama.cpp zeroes the expert counts of these
	}
	switch {
	case experts > maxExperts:
		return failf(ErrInvalidMetadata, "%s is %d, more than llama.cpp's %d", key("expert_count"), experts, maxExperts)
	case used > experts:
		return failf(ErrInvalidMetadata, "%s is %d, more than the %d experts", key("expert_used_count"), used, experts)
	case experts > 0 && used == 0:
		return failf(ErrInvalidMetadata, "%s is %d but %s is 0 or missing", key("expert_count"), experts, key("expert_used_count"))
	case experts == 0 && groups != 0:
		return failf(ErrInvalidMetadata, "%s is %d in a model without experts", key("expert_group_count"), groups)
	case experts > 0 && groups >= experts:
		return failf(ErrInvalidMetadata, "%s is %d, want fewer than the %d experts", key("expert_group_count"), groups, experts)
	case groups > 1 && experts%groups != 0:
		return failf(ErrInvalidMetadata, "%d experts do not split into %d groups (%s)", experts, groups, key("expert_group_count"))
	case groups > 1 && (groupsUsed == 0 || groupsUsed >= groups):
		return failf(ErrInvalidMetadata, "%s is %d, want 1 to %d", key("expert_group_used_count"), groupsUsed, groups-1)
	}
	return nil
}

// validateTokenizer checks what llama.cpp's vocabulary loader assumes
// without checking: gguf_get_arr_str aborts the process on a tokens key
// that is not a string array, and the scores and token types are indexed
// by token id, so a shorter array is read out of bounds.
func (f *File) validateTokenizer() error {
	model, hasModel := f.Get(KeyTokenizerModel)
	if hasModel {
		name, ok := model.Text()
		if !ok {
			return failf(ErrInvalidMetadata, "%s is of type %s, must be string", KeyTokenizerModel, model.Type())
		}
		if !tokenizerModels[name] {
			return failf(ErrInvalidMetadata, "%s is %s, not a tokenizer llama.cpp implements (%s)", KeyTokenizerModel, quoteName(name), tokenizerModelList)
		}
		if name == "none" || name == "no_vocab" {
			hasModel = false
		}
	}
	if err := f.validateCharsmap(); err != nil {
		return err
	}
	tv, hasTokens := f.Get(KeyTokens)
	if !hasTokens {
		if hasModel {
			return failf(ErrInvalidMetadata, "%s is set but %s, the vocabulary, is missing", KeyTokenizerModel, KeyTokens)
		}
		return nil
	}
	tokens, ok := tv.Strings()
	if !ok {
		return failf(ErrInvalidMetadata, "%s is %s, must be an array of strings", KeyTokens, describeType(tv))
	}
	n := len(tokens)
	if n == 0 {
		return failf(ErrInvalidMetadata, "%s is empty", KeyTokens)
	}
	if v, ok := f.Get(KeyScores); ok {
		scores, ok := ArrayOf[float32](v)
		if !ok {
			return failf(ErrInvalidMetadata, "%s is %s, must be an array of float32", KeyScores, describeType(v))
		}
		if len(scores) != n {
			return failf(ErrInvalidMetadata, "%s has %d entries but %s has %d tokens", KeyScores, len(scores), KeyTokens, n)
		}
	}
	if v, ok := f.Get(KeyTokenTypes); ok {
		types, ok := ArrayOf[int32](v)
		if !ok {
			return failf(ErrInvalidMetadata, "%s is %s, must be an array of int32", KeyTokenTypes, describeType(v))
		}
		if len(types) != n {
			return failf(ErrInvalidMetadata, "%s has %d entries but %s has %d tokens", KeyTokenTypes, len(types), KeyTokens, n)
		}
	}
	if v, ok := f.Get(KeyMerges); ok {
		if _, ok := v.Strings(); !ok {
			return failf(ErrInvalidMetadata, "%s is %s, must be an array of strings", KeyMerges, describeType(v))
		}
	}
	for _, sk := range specialTokenKeys {
		v, ok := f.Get(sk.key)
		if !ok {
			continue
		}
		id, ok := v.Int()
		if !ok || v.IsArray() {
			return failf(ErrInvalidMetadata, "%s is %s, must be an integer", sk.key, describeType(v))
		}
		if sk.strict && (id < 0 || id >= int64(n)) {
			return failf(ErrInvalidMetadata, "%s is %d, outside the vocabulary of %d tokens", sk.key, id, n)
		}
	}
	return nil
}

// describeType names v's type for a message: "uint32", "an array of
// int32".
func describeType(v Value) string {
	if v.IsArray() {
		return fmt.Sprintf("an array of %s", v.ElemType())
	}
	return v.Type().String()
}

// tokenizerModels are the values of tokenizer.ggml.model llama.cpp's
// vocabulary loader implements; it refuses others only after reading
// keys it assumes the named tokenizer has.
var tokenizerModels = map[string]bool{
	"none": true, "no_vocab": true, "llama": true, "bert": true, "gpt2": true, "t5": true, "rwkv": true, "plamo2": true,
}

const tokenizerModelList = "llama, gpt2, bert, t5, rwkv, plamo2, none or no_vocab"

// validateCharsmap checks the precompiled charsmap as llama.cpp reads it:
// gguf_get_arr_type aborts the process on a value that is not an array,
// a GGML_ASSERT on one of elements other than int8 or uint8, and the
// unigram tokenizer reads a uint32 blob size from its first four bytes
// and indexes the table past the blob without a check of its own.
func (f *File) validateCharsmap() error {
	v, ok := f.Get(KeyPrecompiledCharsmap)
	if !ok {
		return nil
	}
	var table []byte
	if u, ok := ArrayOf[uint8](v); ok {
		table = u
	} else if s, ok := ArrayOf[int8](v); ok {
		table = make([]byte, len(s))
		for i, x := range s {
			table[i] = byte(x)
		}
	} else {
		return failf(ErrInvalidMetadata, "%s is %s, must be an array of uint8 or int8", KeyPrecompiledCharsmap, describeType(v))
	}
	if len(table) == 0 {
		return nil // llama.cpp skips an empty table
	}
	if len(table) < 4 {
		return failf(ErrInvalidMetadata, "%s is %d bytes, too short to hold its blob size", KeyPrecompiledCharsmap, len(table))
	}
	blob := uint64(binary.LittleEndian.Uint32(table))
	if blob+4 >= uint64(len(table)) {
		return failf(ErrInvalidMetadata, "%s declares a %d-byte blob in %d bytes", KeyPrecompiledCharsmap, blob, len(table))
	}
	return nil
}
