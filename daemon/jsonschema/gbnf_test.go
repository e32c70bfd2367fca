package jsonschema

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file is a small GBNF reader for tests: it checks a grammar the way
// llama.cpp's parser does (fast enough for fuzzing, where loading
// llama.cpp per input is not), matches text against it, and samples
// random documents from it.

type gAlt []gSeq

type gSeq []gItem

// gItem is an atom repeated min to max times (max -1: unbounded).
type gItem struct {
	atom     gAtom
	min, max int
}

type gAtom struct {
	lit    []rune
	class  *gClass
	ref    string
	group  gAlt
	isLit  bool
	isAny  bool
	nRules int // symbols llama.cpp generates for the atom, for its limit
}

type gClass struct {
	neg    bool
	ranges [][2]rune
}

func (c *gClass) matches(r rune) bool {
	in := false
	for _, rg := range c.ranges {
		if rg[0] <= r && r <= rg[1] {
			in = true
			break
		}
	}
	return in != c.neg
}

type gbnf struct {
	rules map[string]gAlt
	order []string
}

type gParser struct {
	src  string
	pos  int
	g    *gbnf
	refs []string
}

// parseGBNF reads a grammar and checks what llama.cpp checks: syntax,
// escapes, repetition limits, defined rules, a root, no left recursion.
func parseGBNF(src string) (*gbnf, error) {
	p := &gParser{src: src, g: &gbnf{rules: map[string]gAlt{}}}
	if err := p.parse(); err != nil {
		return nil, fmt.Errorf("at byte %d: %w", p.pos, err)
	}
	for _, r := range p.refs {
		if _, ok := p.g.rules[r]; !ok {
			return nil, fmt.Errorf("undefined rule %q", r)
		}
	}
	if _, ok := p.g.rules["root"]; !ok {
		return nil, errors.New("no root rule")
	}
	if name, ok := p.g.leftRecursive(); ok {
		return nil, fmt.Errorf("left recursion at rule %q", name)
	}
	return p.g, nil
}

func (p *gParser) peek() byte {
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return 0
}

func (p *gParser) space(newlines bool) {
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == ' ' || c == '\t' || (newlines && (c == '\n' || c == '\r')):
			p.pos++
		case c == '#':
			for p.pos < len(p.src) && p.src[p.pos] != '\n' && p.src[p.pos] != '\r' {
				p.pos++
			}
		default:
			return
		}
	}
}

func isWordByte(c byte) bool {
	return c == '-' || isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func (p *gParser) name() (string, error) {
	start := p.pos
	for p.pos < len(p.src) && isWordByte(p.src[p.pos]) {
		p.pos++
	}
	if start == p.pos {
		return "", errors.New("expecting a name")
	}
	return p.src[start:p.pos], nil
}

func (p *gParser) parse() error {
	p.space(true)
	for p.pos < len(p.src) {
		name, err := p.name()
		if err != nil {
			return err
		}
		p.space(false)
		if !strings.HasPrefix(p.src[p.pos:], "::=") {
			return errors.New("expecting ::=")
		}
		p.pos += 3
		p.space(true)
		alt, err := p.alternates(false)
		if err != nil {
			return err
		}
		if _, dup := p.g.rules[name]; dup {
			return fmt.Errorf("rule %q defined twice", name) // llama.cpp keeps the last; we never mean that
		}
		p.g.rules[name] = alt
		p.g.order = append(p.g.order, name)
		switch p.peek() {
		case '\n', '\r', 0:
		default:
			return fmt.Errorf("expecting end of line, found %q", p.peek())
		}
		p.space(true)
	}
	return nil
}

func (p *gParser) alternates(nested bool) (gAlt, error) {
	var alt gAlt
	for {
		seq, err := p.sequence(nested)
		if err != nil {
			return nil, err
		}
		alt = append(alt, seq)
		if p.peek() != '|' {
			return alt, nil
		}
		p.pos++
		p.space(true)
	}
}

func (p *gParser) sequence(nested bool) (gSeq, error) {
	var seq gSeq
	for p.pos < len(p.src) {
		c := p.peek()
		var atom gAtom
		switch {
		case c == '"':
			lit, err := p.literal()
			if err != nil {
				return nil, err
			}
			atom = gAtom{lit: lit, isLit: true, nRules: 1}
		case c == '[':
			cl, err := p.class()
			if err != nil {
				return nil, err
			}
			atom = gAtom{class: cl, nRules: 1}
		case isWordByte(c):
			name, _ := p.name()
			p.refs = append(p.refs, name)
			atom = gAtom{ref: name, nRules: 1}
		case c == '(':
			p.pos++
			p.space(true)
			inner, err := p.alternates(true)
			if err != nil {
				return nil, err
			}
			if p.peek() != ')' {
				return nil, errors.New("expecting )")
			}
			p.pos++
			atom = gAtom{group: inner, nRules: 1 + innerRules(inner)}
		case c == '.':
			p.pos++
			atom = gAtom{isAny: true, nRules: 1}
		case c == '*' || c == '+' || c == '?' || c == '{':
			if len(seq) == 0 {
				return nil, errors.New("repetition with nothing before it")
			}
			lo, hi, err := p.repetition()
			if err != nil {
				return nil, err
			}
			last := &seq[len(seq)-1]
			if last.min != 1 || last.max != 1 {
				// x{2}{3} is legal GBNF; we never write it.
				return nil, errors.New("repetition of a repetition")
			}
			total := 1
			if hi > 0 {
				total = hi
			} else if lo > 0 {
				total = lo
			}
			if last.atom.nRules*total >= repeatLimit {
				return nil, fmt.Errorf("repetition expands to %d rules; llama.cpp refuses %d or more", last.atom.nRules*total, repeatLimit)
			}
			last.min, last.max = lo, hi
			p.space(nested)
			continue
		default:
			return seq, nil
		}
		seq = append(seq, gItem{atom: atom, min: 1, max: 1})
		p.space(nested)
	}
	return seq, nil
}

func (p *gParser) literal() ([]rune, error) {
	p.pos++
	var lit []rune
	for p.peek() != '"' {
		if p.pos >= len(p.src) {
			return nil, errors.New("unterminated literal")
		}
		r, err := p.char()
		if err != nil {
			return nil, err
		}
		lit = append(lit, r)
	}
	p.pos++
	return lit, nil
}

func (p *gParser) class() (*gClass, error) {
	p.pos++
	cl := &gClass{}
	if p.peek() == '^' {
		cl.neg = true
		p.pos++
	}
	for p.peek() != ']' {
		if p.pos >= len(p.src) {
			return nil, errors.New("unterminated class")
		}
		lo, err := p.char()
		if err != nil {
			return nil, err
		}
		hi := lo
		if p.peek() == '-' && p.pos+1 < len(p.src) && p.src[p.pos+1] != ']' {
			p.pos++
			if hi, err = p.char(); err != nil {
				return nil, err
			}
		}
		cl.ranges = append(cl.ranges, [2]rune{lo, hi})
	}
	p.pos++
	if len(cl.ranges) == 0 {
		return nil, errors.New("empty character class") // llama.cpp builds a broken rule from it
	}
	return cl, nil
}

// innerRules approximates how many rules llama.cpp generates while
// parsing a group: one per nested group and per optional repetition.
func innerRules(a gAlt) int {
	n := 0
	for _, seq := range a {
		for _, it := range seq {
			if it.atom.group != nil {
				n += it.atom.nRules
			}
			if it.max != 1 || it.min != 1 {
				if it.max < 0 {
					n++
				} else {
					n += it.max - it.min
				}
			}
		}
	}
	return n
}

func (p *gParser) repetition() (lo, hi int, err error) {
	c := p.peek()
	p.pos++
	switch c {
	case '*':
		return 0, -1, nil
	case '+':
		return 1, -1, nil
	case '?':
		return 0, 1, nil
	}
	p.space(false)
	readInt := func() (int, error) {
		start := p.pos
		for p.pos < len(p.src) && isDigit(p.src[p.pos]) {
			p.pos++
		}
		if start == p.pos {
			return 0, errors.New("expecting an integer")
		}
		return strconv.Atoi(p.src[start:p.pos])
	}
	if lo, err = readInt(); err != nil {
		return
	}
	p.space(false)
	hi = lo
	if p.peek() == ',' {
		p.pos++
		p.space(false)
		hi = -1
		if isDigit(p.peek()) {
			if hi, err = readInt(); err != nil {
				return
			}
		}
		p.space(false)
	}
	if p.peek() != '}' {
		return 0, 0, errors.New("expecting }")
	}
	p.pos++
	switch {
	case lo >= repeatLimit:
		return 0, 0, errors.New("repetition count over llama.cpp's limit")
	case hi >= repeatLimit:
		// llama.cpp reads this as unbounded: the grammar would not end.
		return 0, 0, fmt.Errorf("repetition bound %d would be read as unbounded", hi)
	case hi >= 0 && hi < lo:
		return 0, 0, fmt.Errorf("repetition {%d,%d} is empty", lo, hi)
	}
	return lo, hi, nil
}

func (p *gParser) char() (rune, error) {
	if p.peek() == '\\' {
		if p.pos+1 >= len(p.src) {
			return 0, errors.New("unfinished escape")
		}
		e := p.src[p.pos+1]
		p.pos += 2
		hex := func(n int) (rune, error) {
			if p.pos+n > len(p.src) {
				return 0, errors.New("short hex escape")
			}
			v, err := strconv.ParseUint(p.src[p.pos:p.pos+n], 16, 32)
			if err != nil {
				return 0, fmt.Errorf("bad hex escape: %w", err)
			}
			p.pos += n
			return rune(v), nil
		}
		switch e {
		case 'x':
			return hex(2)
		case 'u':
			return hex(4)
		case 'U':
			return hex(8)
		case 't':
			return '\t', nil
		case 'r':
			return '\r', nil
		case 'n':
			return '\n', nil
		case '\\', '"', '[', ']', '-':
			return rune(e), nil
		}
		return 0, fmt.Errorf("unknown escape \\%c", e)
	}
	r, size := utf8.DecodeRuneInString(p.src[p.pos:])
	if r == utf8.RuneError && size <= 1 {
		return 0, errors.New("invalid UTF-8")
	}
	p.pos += size
	return r, nil
}

// leftRecursive finds a rule that can reach itself without consuming a
// character, which llama.cpp refuses.
func (g *gbnf) leftRecursive() (string, bool) {
	nullable := map[string]bool{}
	for changed := true; changed; {
		changed = false
		for name, alt := range g.rules {
			if !nullable[name] && g.altNullable(alt, nullable) {
				nullable[name] = true
				changed = true
			}
		}
	}
	const (
		unvisited = iota
		inProgress
		done
	)
	state := map[string]int{}
	var visit func(name string) bool
	var visitAlt func(a gAlt) bool
	visitAlt = func(a gAlt) bool {
		for _, seq := range a {
			for _, it := range seq {
				if it.atom.ref != "" && visit(it.atom.ref) {
					return true
				}
				if it.atom.group != nil && visitAlt(it.atom.group) {
					return true
				}
				if !g.itemNullable(it, nullable) {
					break
				}
			}
		}
		return false
	}
	visit = func(name string) bool {
		switch state[name] {
		case inProgress:
			return true
		case done:
			return false
		}
		state[name] = inProgress
		if visitAlt(g.rules[name]) {
			return true
		}
		state[name] = done
		return false
	}
	for _, name := range g.order {
		if visit(name) {
			return name, true
		}
	}
	return "", false
}

func (g *gbnf) altNullable(a gAlt, nullable map[string]bool) bool {
	for _, seq := range a {
		ok := true
		for _, it := range seq {
			if !g.itemNullable(it, nullable) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func (g *gbnf) itemNullable(it gItem, nullable map[string]bool) bool {
	if it.min == 0 {
		return true
	}
	switch {
	case it.atom.ref != "":
		return nullable[it.atom.ref]
	case it.atom.group != nil:
		return g.altNullable(it.atom.group, nullable)
	case it.atom.isLit:
		return len(it.atom.lit) == 0
	}
	return false
}
