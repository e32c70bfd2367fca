package synth

import (
	_ "embed"
	"fmt"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

//go:embed words.txt
var wordsTxt string

// Token types, as llama.cpp's llama_token_type numbers them in
// tokenizer.ggml.token_type.
const (
	tokenNormal  int32 = 1
	tokenUnknown int32 = 2
	tokenControl int32 = 3
	tokenByte    int32 = 6
)

// Ids of the special tokens, fixed by the order vocabulary adds them.
const (
	tokenUnk       = 0
	tokenBOS       = 1
	tokenEOS       = 2
	tokenImStart   = 3
	tokenImEnd     = 4
	firstByteToken = 5 // <0x00>; <0xFF> is firstByteToken+255
)

// spaceMark is SentencePiece's visible space, U+2581, which llama.cpp's
// SPM tokenizer substitutes for every space (and prepends to the text)
// before looking pieces up.
const spaceMark = "\u2581"

// punctuation gets single-character pieces: common enough that byte
// fallback for them would make prompts needlessly long.
const punctuation = ".,!?;:'\"-()[]{}<>/\\@#$%&*+=_~`^|"

// vocab is a SentencePiece-style vocabulary in GGUF's three parallel
// arrays.
type vocab struct {
	tokens []string
	scores []float32
	types  []int32
}

// vocabulary returns the vocabulary every synthetic model carries, built
// once: special and control tokens, the 256 byte-fallback tokens, single
// characters, then "▁" + each word of words.txt with every prefix of it.
//
// The prefixes are what make whole words reachable. llama.cpp's SPM
// tokenizer starts from single characters and repeatedly merges the
// adjacent pair whose concatenation is a token with the highest score; it
// has no merge table, so "▁hello" is only reached if "▁h", "▁he", "▁hel"
// and "▁hell" are all tokens. Scores grow with length so that longer
// pieces win.
var vocabulary = sync.OnceValue(func() *vocab {
	v := &vocab{}
	add := func(tok string, score float32, typ int32) {
		v.tokens = append(v.tokens, tok)
		v.scores = append(v.scores, score)
		v.types = append(v.types, typ)
	}
	add("<unk>", 0, tokenUnknown)
	add("<s>", 0, tokenControl)
	add("</s>", 0, tokenControl)
	add("<|im_start|>", 0, tokenControl)
	add("<|im_end|>", 0, tokenControl)
	for b := 0; b < 256; b++ {
		add(fmt.Sprintf("<0x%02X>", b), 0, tokenByte)
	}

	seen := make(map[string]bool)
	var pieces []string
	piece := func(p string) {
		if !seen[p] {
			seen[p] = true
			pieces = append(pieces, p)
		}
	}
	piece(spaceMark)
	for c := 'a'; c <= 'z'; c++ {
		piece(string(c))
		piece(string(c - 'a' + 'A'))
	}
	for c := '0'; c <= '9'; c++ {
		piece(string(c))
	}
	for _, c := range punctuation {
		piece(string(c))
	}
	for _, w := range words() {
		for i := 1; i <= len(w); i++ {
			piece(spaceMark + w[:i])
		}
	}
	// Sorted by length, then text: the file must not depend on the
	// order of words.txt beyond its contents.
	sort.Slice(pieces, func(i, j int) bool {
		li, lj := utf8.RuneCountInString(pieces[i]), utf8.RuneCountInString(pieces[j])
		if li != lj {
			return li < lj
		}
		return pieces[i] < pieces[j]
	})
	for _, p := range pieces {
		add(p, float32(utf8.RuneCountInString(p)), tokenNormal)
	}
	return v
})

// words returns the words of words.txt, skipping comments and blanks.
func words() []string {
	var ws []string
	for _, line := range strings.Split(wordsTxt, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ws = append(ws, line)
	}
	return ws
}
