package jsonschema

import (
	"fmt"
	"regexp/syntax"
	"strings"
	"unicode"
)

// pat is a translated piece of a pattern: its GBNF expression (atom says
// it is one symbol, which may be repeated as it is), the fewest and most
// characters it matches, and the most bytes those take in JSON.
type pat struct {
	expr       string
	atom       bool
	minC, maxC int
	maxB       int
}

// patConv translates the regular expressions whose structure GBNF can
// express: literals, classes, concatenation, alternation and bounded
// repetition, anchored at the ends or not. Assertions in the middle (^
// inside, \b, multi-line mode) are beyond it; so are repetitions llama.cpp
// would refuse.
type patConv struct {
	g    *grammarBuilder
	name string
}

// pattern writes a string matching n.pattern; ok is false when the pattern
// is beyond translation, which Gaps then reports.
func (g *grammarBuilder) pattern(n *node, name string) (frag, bool) {
	re, err := syntax.Parse(n.pattern.String(), syntax.Perl)
	if err != nil { // regexp.Compile accepted it; cannot happen
		return frag{}, false
	}
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	subs := []*syntax.Regexp{re}
	if re.Op == syntax.OpConcat {
		subs = re.Sub
	}
	start := len(subs) > 0 && subs[0].Op == syntax.OpBeginText
	if start {
		subs = subs[1:]
	}
	end := len(subs) > 0 && subs[len(subs)-1].Op == syntax.OpEndText
	if end {
		subs = subs[:len(subs)-1]
	}
	pc := &patConv{g: g, name: name + "-pattern"}
	body, ok := pc.concat(subs)
	if !ok {
		g.gap(n.ptr, "pattern %s is checked by Validate only", quoteJSON(n.pattern.String()))
		return frag{}, false
	}
	// An unanchored pattern matches anywhere in the string: anything may
	// come before or after it.
	parts := []pat{{expr: `"\""`}}
	free := func() pat {
		return pat{expr: repeat(g.char(), 0, g.opts.MaxStringLength), maxC: g.opts.MaxStringLength,
			maxB: mulSat(maxCharBytes, g.opts.MaxStringLength)}
	}
	if !start {
		parts = append(parts, free())
	}
	parts = append(parts, body)
	if !end {
		parts = append(parts, free())
	}
	whole := seqOf(append(parts, pat{expr: `"\""`, maxB: 2}))
	if whole.minC < n.minLength || (n.maxLength >= 0 && whole.maxC > n.maxLength) {
		g.gap(n.ptr, "minLength and maxLength are checked by Validate only next to pattern %s", quoteJSON(n.pattern.String()))
	}
	return g.add(name, whole.expr, addSat(whole.maxB, 1)), true
}

// seqOf concatenates pieces.
func seqOf(ps []pat) pat {
	var out pat
	var exprs []string
	for _, p := range ps {
		exprs = append(exprs, p.expr)
		out.minC = addSat(out.minC, p.minC)
		out.maxC = addSat(out.maxC, p.maxC)
		out.maxB = addSat(out.maxB, p.maxB)
	}
	out.expr = join(exprs...)
	out.atom = len(ps) == 1 && ps[0].atom
	return out
}

func (pc *patConv) concat(subs []*syntax.Regexp) (pat, bool) {
	ps := make([]pat, 0, len(subs))
	for _, s := range subs {
		p, ok := pc.conv(s)
		if !ok {
			return pat{}, false
		}
		ps = append(ps, p)
	}
	return seqOf(ps), true
}

func (pc *patConv) conv(re *syntax.Regexp) (pat, bool) {
	switch re.Op {
	case syntax.OpEmptyMatch:
		return pat{}, true
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			var ps []pat
			for _, r := range re.Rune {
				p, ok := pc.class(foldRanges(r))
				if !ok {
					return pat{}, false
				}
				ps = append(ps, p)
			}
			return seqOf(ps), true
		}
		var b strings.Builder
		for _, r := range re.Rune {
			if !validScalar(r) {
				return pat{}, false
			}
			b.WriteString(jsonChar(r))
		}
		n := len(re.Rune)
		return pat{expr: gbnfLiteral(b.String()), atom: true, minC: n, maxC: n, maxB: len(b.String())}, true
	case syntax.OpCharClass:
		return pc.class(re.Rune)
	case syntax.OpAnyCharNotNL:
		return pc.class([]rune{0, '\n' - 1, '\n' + 1, unicode.MaxRune})
	case syntax.OpAnyChar:
		return pc.class([]rune{0, unicode.MaxRune})
	case syntax.OpCapture:
		return pc.conv(re.Sub[0])
	case syntax.OpConcat:
		return pc.concat(re.Sub)
	case syntax.OpAlternate:
		var alts []string
		out := pat{minC: -1}
		for _, s := range re.Sub {
			p, ok := pc.conv(s)
			if !ok {
				return pat{}, false
			}
			expr := p.expr
			if expr == "" {
				expr = `""`
			}
			alts = append(alts, expr)
			if out.minC < 0 || p.minC < out.minC {
				out.minC = p.minC
			}
			out.maxC, out.maxB = max(out.maxC, p.maxC), max(out.maxB, p.maxB)
		}
		out.expr = "( " + strings.Join(alts, " | ") + " )"
		return out, true
	case syntax.OpStar:
		return pc.repeat(re.Sub[0], 0, -1)
	case syntax.OpPlus:
		return pc.repeat(re.Sub[0], 1, -1)
	case syntax.OpQuest:
		return pc.repeat(re.Sub[0], 0, 1)
	case syntax.OpRepeat:
		return pc.repeat(re.Sub[0], re.Min, re.Max)
	}
	// Assertions inside the pattern, \b, multi-line ^ and $, no-match.
	return pat{}, false
}

// repeat bounds an unbounded repetition by the string cap: a pattern like
// ^[A-Z]+$ must not let a model write forever either.
func (pc *patConv) repeat(sub *syntax.Regexp, lo, hi int) (pat, bool) {
	p, ok := pc.conv(sub)
	if !ok || lo >= repeatLimit {
		return pat{}, false
	}
	cap := pc.g.opts.MaxStringLength
	if hi < 0 {
		hi = max(lo, cap)
	}
	hi = min(hi, repeatLimit-1)
	if p.expr == "" || hi == 0 {
		return pat{}, true
	}
	atom := p.expr
	if !p.atom {
		// Repeat one symbol: llama.cpp multiplies the rules a group
		// expands to by the count and refuses 2000 or more.
		atom = pc.g.add(pc.name, p.expr, p.maxB).expr
	}
	return pat{
		expr: repeat(atom, lo, hi), atom: lo == 1 && hi == 1,
		minC: mulSat(lo, p.minC), maxC: mulSat(hi, p.maxC), maxB: mulSat(hi, p.maxB),
	}, true
}

// class writes a character class as JSON text: the characters JSON allows
// raw as a GBNF class, the others as their escapes.
func (pc *patConv) class(ranges []rune) (pat, bool) {
	var plain []rune
	var alts, controls []string
	add := func(lo, hi rune) {
		if lo <= hi {
			plain = append(plain, lo, hi)
		}
	}
	// Split each range around what JSON needs escaped and what UTF-8
	// cannot hold.
	cuts := [][2]rune{{0, 0x1f}, {'"', '"'}, {'\\', '\\'}, {0x7f, 0x7f}, {0xd800, 0xdfff}}
	for i := 0; i+1 < len(ranges); i += 2 {
		lo, hi := ranges[i], min(ranges[i+1], unicode.MaxRune)
		for _, special := range []rune{'"', '\\', 0x7f} {
			if lo <= special && special <= hi {
				alts = append(alts, gbnfLiteral(jsonChar(special)))
			}
		}
		for c := max(lo, 0); c <= min(hi, 0x1f); c++ {
			controls = append(controls, gbnfLiteral(jsonChar(c)))
		}
		cur := lo
		for _, cut := range cuts {
			if cut[1] < cur || cut[0] > hi {
				continue
			}
			add(cur, min(hi, cut[0]-1))
			cur = cut[1] + 1
		}
		add(cur, hi)
	}
	if len(controls) == 0x20 {
		// All of them: the generic escapes say it shorter.
		controls = []string{`"\\" [bfnrt]`, `"\\u00" [01] [0-9a-fA-F]`}
	}
	alts = append(alts, controls...)
	if len(plain) > 0 {
		var b strings.Builder
		b.WriteByte('[')
		for i := 0; i < len(plain); i += 2 {
			b.WriteString(classChar(plain[i]))
			if plain[i+1] != plain[i] {
				b.WriteByte('-')
				b.WriteString(classChar(plain[i+1]))
			}
		}
		b.WriteByte(']')
		alts = append([]string{b.String()}, alts...)
	}
	switch len(alts) {
	case 0:
		return pat{}, false
	case 1:
		return pat{expr: alts[0], atom: true, minC: 1, maxC: 1, maxB: maxCharBytes}, true
	}
	return pat{expr: "( " + strings.Join(alts, " | ") + " )", minC: 1, maxC: 1, maxB: maxCharBytes}, true
}

// classChar writes a class endpoint, escaping all but letters and digits
// so that no character can mean ], -, ^ or \ to the GBNF reader.
func classChar(r rune) string {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return string(r)
	case r <= 0xff:
		return fmt.Sprintf(`\x%02X`, r)
	case r <= 0xffff:
		return fmt.Sprintf(`\u%04X`, r)
	}
	return fmt.Sprintf(`\U%08X`, r)
}

// jsonChar is how JSON text writes r inside a string. DEL is escaped,
// as the grammar's plain strings never write it raw either.
func jsonChar(r rune) string {
	if r == 0x7f {
		return `\u007f`
	}
	q := quoteJSON(string(r))
	return q[1 : len(q)-1]
}

func validScalar(r rune) bool {
	return r >= 0 && r <= unicode.MaxRune && !(0xd800 <= r && r <= 0xdfff)
}

// foldRanges is the class of r and the runes it case-folds to.
func foldRanges(r rune) []rune {
	out := []rune{r, r}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		out = append(out, f, f)
	}
	return out
}
