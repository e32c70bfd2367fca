package jsonschema

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// frag is a piece of grammar: a rule name and the most bytes the rule
// matches. max is what makes termination checkable: every token a
// grammar-constrained model samples is at least one byte (llama.cpp
// rejects empty pieces), so max+1 tokens always complete a document.
type frag struct {
	expr string
	max  int
}

type memoKey struct {
	d      *defn
	budget int // -1 for definitions that are not recursive
}

type memoEntry struct {
	f  frag
	ok bool
}

// grammarBuilder writes a GBNF grammar for a compiled schema. Every
// method that generates for a node returns a single rule name, never an
// inline expression: llama.cpp's parser counts the rules a repeated group
// expands to and refuses 2000 or more, so what is repeated must be one
// symbol.
type grammarBuilder struct {
	opts   Options
	c      *compiler
	rules  map[string]string // name → body
	byBody map[string]string // body → name, to share identical rules
	suffix map[string]int    // last numeric suffix used per name
	base   map[string]frag   // primitive rules by their natural name
	memo   map[memoKey]memoEntry
	gaps   []string
}

func newGrammarBuilder(c *compiler, opts Options) *grammarBuilder {
	return &grammarBuilder{
		opts: opts, c: c,
		rules: map[string]string{}, byBody: map[string]string{}, suffix: map[string]int{},
		base: map[string]frag{}, memo: map[memoKey]memoEntry{},
	}
}

// build generates the grammar for the root schema; ok is false when no
// document fits within the caps, which Compile reports.
func (g *grammarBuilder) build(root *node) (text string, maxBytes int, ok bool) {
	f, ok := g.node(root, g.opts.MaxDepth, "root")
	if !ok {
		return "", 0, false
	}
	if f.expr != "root" {
		g.rules["root"] = f.expr
	}
	names := make([]string, 0, len(g.rules))
	for name := range g.rules {
		if name != "root" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	var b strings.Builder
	for _, name := range append([]string{"root"}, names...) {
		fmt.Fprintf(&b, "%s ::= %s\n", name, g.rules[name])
	}
	return b.String(), f.max, true
}

func (g *grammarBuilder) gap(ptr, format string, args ...any) {
	msg := displayPointer(ptr) + ": " + fmt.Sprintf(format, args...)
	if !slices.Contains(g.gaps, msg) {
		g.gaps = append(g.gaps, msg)
	}
}

// add defines a rule and returns its name: the name of an identical rule
// when there is one, else name made unique.
func (g *grammarBuilder) add(name, body string, max int) frag {
	if existing, ok := g.byBody[body]; ok {
		return frag{existing, max}
	}
	name = ruleName(name)
	unique := name
	for g.rules[unique] != "" {
		g.suffix[name]++
		unique = fmt.Sprintf("%s-%d", name, g.suffix[name]+1)
	}
	g.rules[unique] = body
	g.byBody[body] = unique
	return frag{unique, max}
}

// ruleName makes s a GBNF rule name: letters, digits and dashes only, cut
// to a readable length (add makes it unique).
func ruleName(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range s {
		if r < 128 && (isDigit(byte(r)) || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.TrimRight(b.String(), "-")
	if len(out) > 48 {
		out = strings.TrimRight(out[:48], "-")
	}
	if out == "" {
		out = "p"
	}
	return out
}

// childName names the rule of a property or item: bare under the root, so
// that a flat PLC schema reads as its field names.
func childName(parent, name string) string {
	name = ruleName(name)
	if parent == "root" {
		if name == "root" {
			return "root-property"
		}
		return name
	}
	return parent + "-" + name
}

// gbnfLiteral quotes s as a GBNF string literal.
func gbnfLiteral(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// repeat writes x{lo,hi} in the shortest form llama.cpp reads.
func repeat(x string, lo, hi int) string {
	switch {
	case hi == 0:
		return ""
	case lo == hi && lo == 1:
		return x
	case lo == hi:
		return fmt.Sprintf("%s{%d}", x, lo)
	case lo == 0 && hi == 1:
		return x + "?"
	}
	return fmt.Sprintf("%s{%d,%d}", x, lo, hi)
}

// join concatenates the non-empty parts of a sequence.
func join(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}

func addSat(vals ...int) int {
	total := 0
	for _, v := range vals {
		if v > math.MaxInt-total {
			return math.MaxInt
		}
		total += v
	}
	return total
}

func mulSat(a, b int) int {
	if a != 0 && b > math.MaxInt/a {
		return math.MaxInt
	}
	return a * b
}

// node generates the rule for n; ok is false when no value fits within the
// caps (Compile has then reported why, unless only depth ran out).
func (g *grammarBuilder) node(n *node, budget int, name string) (frag, bool) {
	if n.target != nil {
		return g.ref(n, budget)
	}
	if n.hasEnum || n.hasConst {
		return g.literals(n, name)
	}
	if n.unconstrained() {
		return g.any(g.opts.MaxDepth), true
	}
	types := n.types
	if types&tNumber != 0 {
		types &^= tInteger // every integer is a number
	}
	multi := types&(types-1) != 0
	var alts []frag
	ok := true
	for _, tn := range typeNames {
		if types&tn.t == 0 {
			continue
		}
		sub := name
		if multi {
			sub = name + "-" + tn.name
		}
		var f frag
		var fok bool
		switch tn.t {
		case tObject:
			f, fok = g.object(n, budget, sub)
		case tArray:
			f, fok = g.array(n, budget, sub)
		case tString:
			f, fok = g.string(n, sub)
		case tNumber, tInteger:
			f, fok = g.numeric(n, tn.t == tInteger, sub)
		case tBoolean:
			f, fok = g.boolean(), true
		case tNull:
			f, fok = g.null(), true
		}
		if fok {
			alts = append(alts, f)
		}
		ok = ok && fok
	}
	if len(alts) == 0 {
		return frag{}, false
	}
	return g.union(name, alts), true
}

// unconstrained reports whether n accepts any value.
func (n *node) unconstrained() bool {
	return n.types == tAll && n.props == nil && n.required == nil && !n.noAdditional &&
		n.additional == nil && n.items == nil && n.minItems == 0 && n.maxItems < 0 &&
		n.minLength == 0 && n.maxLength < 0 && n.pattern == nil &&
		n.minimum == nil && n.maximum == nil && n.exclusiveMinimum == nil && n.exclusiveMaximum == nil
}

// ref generates a referenced definition once per depth. A $ref that stays
// within a cycle of definitions spends one unit of budget, so recursion
// unrolls MaxDepth times and then stops: at the bottom, optional members
// and empty arrays are the only way out, and a schema that leaves none
// fails to compile instead of looping.
func (g *grammarBuilder) ref(n *node, budget int) (frag, bool) {
	d := n.target
	b := g.opts.MaxDepth
	key := memoKey{d, -1}
	name := "def-" + d.name
	if d == g.c.root {
		name = "root"
	}
	if d.cyclic {
		if d.scc == n.def.scc {
			b = budget - 1
			if b < 0 {
				return frag{}, false
			}
		}
		key.budget = b
		name = fmt.Sprintf("%s-%d", name, b)
	}
	if e, ok := g.memo[key]; ok {
		return e.f, e.ok
	}
	f, ok := g.node(d.node, b, name)
	g.memo[key] = memoEntry{f, ok}
	return f, ok
}

// literals is an enum or const: the values, written compactly, that also
// satisfy the node's other keywords.
func (g *grammarBuilder) literals(n *node, name string) (frag, bool) {
	vals, kw := n.enum, "enum"
	if n.hasConst {
		vals, kw = []any{n.constVal}, "const"
	}
	var alts []string
	most := 0
	for _, v := range vals {
		if !matches(n, v) {
			continue
		}
		lit := gbnfLiteral(encodeJSON(v))
		if slices.Contains(alts, lit) {
			continue
		}
		alts = append(alts, lit)
		most = max(most, len(encodeJSON(v)))
	}
	if len(alts) == 0 {
		g.c.fail(n.ptr, ErrInvalidSchema, "no value of %s satisfies the schema's other keywords", kw)
		return frag{}, false
	}
	return g.add(name, strings.Join(alts, " | "), most), true
}
