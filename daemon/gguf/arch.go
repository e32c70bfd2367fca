package gguf

import "sort"

// architectures is the set of general.architecture values llama.cpp can
// load: LLM_ARCH_NAMES in llama.cpp's src/llama-arch.cpp, taken from both
// upstream's source and the strings of the libllama.so ember installs
// (node-llama-cpp 3.22.1, which carries a few names upstream's table did
// not have yet). "clip" is left out: it is a placeholder llama-quantize
// uses for vision projectors, which llama_model_load cannot load.
//
// A name missing here makes Read return ErrUnsupportedArchitecture; when
// the installed llama.cpp gains an architecture, add it here.
var architectures = func() map[string]bool {
	m := make(map[string]bool)
	for _, name := range []string{
		"afmoe", "apertus", "arcee", "arctic", "arwkv7", "baichuan", "bailingmoe",
		"bailingmoe2", "bailingmoe3", "bert", "bitnet", "bloom", "chameleon", "chatglm",
		"codeshell", "cogvlm", "cohere2", "cohere2moe", "command-r", "dbrx", "deci", "deepseek",
		"deepseek2", "deepseek2-ocr", "deepseek32", "deepseek4", "dflash", "dots1", "dots3note",
		"dream", "eagle3", "ernie4_5", "ernie4_5-moe", "eurobert", "exaone", "exaone-moe",
		"exaone4", "falcon", "falcon-h1", "gemma", "gemma-embedding", "gemma2", "gemma3",
		"gemma3n", "gemma4", "gemma4-assistant", "glm-dsa", "glm4", "glm4moe", "gpt-oss",
		"gpt2", "gptj", "gptneox", "granite", "granite_swa", "granitehybrid", "granitemoe",
		"graniteswitch", "grok", "grovemoe", "hrm_text", "hunyuan-dense", "hunyuan-moe",
		"hunyuan_vl", "hy_v3", "hy_v4", "internlm2", "jais", "jais2", "jamba", "jina-bert-v2",
		"jina-bert-v3", "kimi-k3", "kimi-linear", "laguna", "lfm2", "lfm2moe", "llada",
		"llada-moe", "llama", "llama-embed", "llama4", "maincoder", "mamba", "mamba2", "maple",
		"mellum", "mimo2", "minicpm", "minicpm3", "minimax-01", "minimax-m2", "minimax-m3",
		"mistral3", "mistral4", "modern-bert", "mpt", "muse-glimmer", "nanbeige", "nemotron",
		"nemotron_h", "nemotron_h_moe", "neo-bert", "nomic-bert", "nomic-bert-moe", "olmo",
		"olmo2", "olmoe", "openelm", "orion", "paddleocr", "pangu-embedded", "phi2", "phi3",
		"phimoe", "plamo", "plamo2", "plamo3", "plm", "pockettts", "qwen", "qwen2", "qwen2moe",
		"qwen2vl", "qwen3", "qwen35", "qwen35moe", "qwen3moe", "qwen3next", "qwen3tts",
		"qwen3vl", "qwen3vlmoe", "qwen4exp", "refact", "rnd1", "rwkv6", "rwkv6qwen2", "rwkv7",
		"seed_oss", "smallthinker", "smollm3", "spark2_5", "stablelm", "starcoder",
		"starcoder2", "step35", "t5", "t5encoder", "talkie", "wavtokenizer-dec", "xverse",
	} {
		m[name] = true
	}
	return m
}()

// SupportedArchitecture reports whether llama.cpp can load models of
// architecture name (a general.architecture value such as "llama").
func SupportedArchitecture(name string) bool { return architectures[name] }

// Architectures returns the supported architecture names, sorted.
func Architectures() []string {
	names := make([]string, 0, len(architectures))
	for name := range architectures {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
