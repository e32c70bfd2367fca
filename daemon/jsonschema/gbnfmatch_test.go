package jsonschema

import (
	"math/rand/v2"
	"strings"
	"unicode/utf8"
)

// matcher decides whether a grammar matches a text exactly, by computing
// the set of positions each piece can end at.
type matcher struct {
	g    *gbnf
	text []rune
	memo map[string]map[int][]int
}

func (g *gbnf) match(text string) bool {
	// A grammar's language is a set of code-point strings; bytes that are
	// not UTF-8 are outside every grammar (llama.cpp's sampler works on
	// decoded code points, and jobs re-validate what the model wrote).
	if !utf8.ValidString(text) {
		return false
	}
	m := &matcher{g: g, text: []rune(text), memo: map[string]map[int][]int{}}
	for _, end := range m.rule("root", 0) {
		if end == len(m.text) {
			return true
		}
	}
	return false
}

func (m *matcher) rule(name string, pos int) []int {
	byPos := m.memo[name]
	if byPos == nil {
		byPos = map[int][]int{}
		m.memo[name] = byPos
	}
	if ends, ok := byPos[pos]; ok {
		return ends
	}
	ends := m.alt(m.g.rules[name], pos)
	byPos[pos] = ends
	return ends
}

func (m *matcher) alt(a gAlt, pos int) []int {
	set := map[int]bool{}
	for _, seq := range a {
		cur := []int{pos}
		for _, it := range seq {
			cur = m.item(it, cur)
			if len(cur) == 0 {
				break
			}
		}
		for _, e := range cur {
			set[e] = true
		}
	}
	return keys(set)
}

func (m *matcher) item(it gItem, starts []int) []int {
	out := map[int]bool{}
	cur := starts
	if it.min == 0 {
		for _, s := range starts {
			out[s] = true
		}
	}
	for n := 1; it.max < 0 || n <= it.max; n++ {
		next := map[int]bool{}
		for _, s := range cur {
			for _, e := range m.atom(it.atom, s) {
				next[e] = true
			}
		}
		if len(next) == 0 {
			break
		}
		cur = keys(next)
		if n >= it.min {
			for _, e := range cur {
				out[e] = true
			}
		}
		if it.max < 0 && n > len(m.text) {
			break
		}
	}
	return keys(out)
}

func (m *matcher) atom(a gAtom, pos int) []int {
	switch {
	case a.isLit:
		if pos+len(a.lit) > len(m.text) {
			return nil
		}
		for i, r := range a.lit {
			if m.text[pos+i] != r {
				return nil
			}
		}
		return []int{pos + len(a.lit)}
	case a.class != nil:
		if pos < len(m.text) && a.class.matches(m.text[pos]) {
			return []int{pos + 1}
		}
		return nil
	case a.isAny:
		if pos < len(m.text) {
			return []int{pos + 1}
		}
		return nil
	case a.ref != "":
		return m.rule(a.ref, pos)
	}
	return m.alt(a.group, pos)
}

func keys(set map[int]bool) []int {
	out := make([]int, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	return out
}

// sample writes a random text the grammar matches, as a model under the
// grammar might; ok is false when it grew past limit bytes.
func (g *gbnf) sample(rng *rand.Rand, limit int) (string, bool) {
	var b strings.Builder
	ok := g.sampleAlt(rng, g.rules["root"], &b, limit)
	return b.String(), ok
}

func (g *gbnf) sampleAlt(rng *rand.Rand, a gAlt, b *strings.Builder, limit int) bool {
	for _, it := range a[rng.IntN(len(a))] {
		n := it.min
		switch hi := it.max; {
		case hi == it.min:
		case rng.IntN(10) == 0 && hi >= 0:
			n = hi // sometimes the cap itself
		case rng.IntN(3) > 0:
			top := it.min + 4
			if hi >= 0 {
				top = min(top, hi)
			}
			n = it.min + rng.IntN(top-it.min+1)
		}
		for range n {
			if b.Len() > limit {
				return false
			}
			switch at := it.atom; {
			case at.isLit:
				b.WriteString(string(at.lit))
			case at.class != nil:
				b.WriteRune(sampleClass(rng, at.class))
			case at.isAny:
				b.WriteRune('x')
			case at.ref != "":
				if !g.sampleAlt(rng, g.rules[at.ref], b, limit) {
					return false
				}
			default:
				if !g.sampleAlt(rng, at.group, b, limit) {
					return false
				}
			}
		}
	}
	return true
}

// interesting are the characters a negated class is sampled from.
var interesting = []rune("aZ09 _-:{}[],.\"\\/'é温😀\u2028\u00a0\t\n\x7f\x00\x1f")

func sampleClass(rng *rand.Rand, c *gClass) rune {
	if !c.neg {
		rg := c.ranges[rng.IntN(len(c.ranges))]
		for {
			r := rg[0] + rune(rng.IntN(int(rg[1]-rg[0])+1))
			if !(0xD800 <= r && r <= 0xDFFF) || rg[0] == rg[1] {
				return r
			}
		}
	}
	for range 100 {
		if r := interesting[rng.IntN(len(interesting))]; c.matches(r) {
			return r
		}
	}
	panic("no sample character for a negated class")
}
