package jsonschema

import (
	"strconv"
	"strings"
)

// intLimit is the largest magnitude of the grammar's integer part: 16
// digits.
const intLimit int64 = 9_999_999_999_999_999

// numeric generates an integer or a number within the node's bounds.
// Integer ranges are exact. Number ranges are exact when the bounds are
// integers (the common case for a PLC: 0 to 500, -40 to 125); a bound with
// a fraction is rounded outwards in the grammar and left to Validate.
func (g *grammarBuilder) numeric(n *node, integer bool, name string) (frag, bool) {
	lo, loEx := n.lower()
	hi, hiEx := n.upper()
	if lo == nil && hi == nil {
		if integer {
			return g.integer(), true
		}
		return g.number(), true
	}
	b, ok := g.bounds(n, lo, loEx, hi, hiEx, integer)
	if !ok {
		return frag{}, false
	}
	if integer {
		return g.add(name, intRange(b.lo, b.hi), 1+maxIntDigits), true
	}
	expr := numberRange(b)
	if expr == "" {
		g.c.fail(n.ptr, ErrInvalidSchema, "no number lies within the bounds")
		return frag{}, false
	}
	return g.add(name, expr, 2+maxIntDigits+maxFracDigits), true
}

// intBounds are bounds rounded to integers within the grammar's digits.
// For integers they are inclusive; for numbers loEx and hiEx say whether
// the bound itself is excluded, and hasLo/hasHi whether there is one.
type intBounds struct {
	lo, hi       int64
	loEx, hiEx   bool
	hasLo, hasHi bool
}

func (g *grammarBuilder) bounds(n *node, lo *decimal, loEx bool, hi *decimal, hiEx bool, integer bool) (intBounds, bool) {
	b := intBounds{lo: -intLimit, hi: intLimit}
	if lo != nil {
		v, clamped := lo.intBound(true, intLimit)
		switch {
		case clamped && v > 0:
			g.c.fail(n.ptr, ErrUnsupported, "the lower bound %s is beyond the grammar's %d-digit numbers", lo.text, maxIntDigits)
			return b, false
		case clamped:
			// Below every number the grammar writes: no bound.
		case integer:
			if loEx && lo.isInt() {
				v++
			}
			b.lo = v
		default:
			if !lo.isInt() {
				v, _ = lo.intBound(false, intLimit)
				loEx = false
				g.gap(n.ptr, "the grammar rounds the lower bound %s down to %d; Validate checks it", lo.text, v)
			}
			b.lo, b.loEx, b.hasLo = v, loEx, true
		}
	}
	if hi != nil {
		v, clamped := hi.intBound(false, intLimit)
		switch {
		case clamped && v < 0:
			g.c.fail(n.ptr, ErrUnsupported, "the upper bound %s is beyond the grammar's %d-digit numbers", hi.text, maxIntDigits)
			return b, false
		case clamped:
		case integer:
			if hiEx && hi.isInt() {
				v--
			}
			b.hi = v
		default:
			if !hi.isInt() {
				v, _ = hi.intBound(true, intLimit)
				hiEx = false
				g.gap(n.ptr, "the grammar rounds the upper bound %s up to %d; Validate checks it", hi.text, v)
			}
			b.hi, b.hiEx, b.hasHi = v, hiEx, true
		}
	}
	if integer && b.lo > b.hi {
		g.c.fail(n.ptr, ErrInvalidSchema, "no integer lies within the bounds")
		return b, false
	}
	return b, true
}

// intRange matches the integers from lo to hi, written without leading
// zeros (and without "-0").
func intRange(lo, hi int64) string {
	var alts []string
	if lo < 0 {
		from := int64(1)
		if hi < 0 {
			from = -hi
		}
		alts = append(alts, `"-" `+group(natRange(from, -lo)))
	}
	if hi >= 0 {
		alts = append(alts, natRange(max(lo, 0), hi))
	}
	return strings.Join(alts, " | ")
}

// group parenthesises an alternation so it can be part of a sequence.
func group(expr string) string {
	if strings.Contains(expr, "|") {
		return "( " + expr + " )"
	}
	return expr
}

func pow10(n int) int64 {
	v := int64(1)
	for range n {
		v *= 10
	}
	return v
}

// natRange matches the naturals from lo to hi: one sub-range per digit
// count, with whole digit counts merged into [1-9] [0-9]{m,n}.
func natRange(lo, hi int64) string {
	la, lb := len(strconv.FormatInt(lo, 10)), len(strconv.FormatInt(hi, 10))
	full := func(l int) bool {
		return l >= 2 && (l > la || lo == pow10(l-1)) && (l < lb || hi == pow10(l)-1)
	}
	var alts []string
	for l := la; l <= lb; l++ {
		if full(l) {
			end := l
			for end+1 <= lb && full(end+1) {
				end++
			}
			alts = append(alts, join("[1-9]", digits(l-1, end-1)))
			l = end
			continue
		}
		x, y := lo, hi
		if l > la {
			x = pow10(l - 1)
		}
		if l < lb {
			y = pow10(l) - 1
		}
		alts = append(alts, sameLength(strconv.FormatInt(x, 10), strconv.FormatInt(y, 10)))
	}
	return strings.Join(alts, " | ")
}

// digits matches m to n decimal digits.
func digits(m, n int) string {
	if n == 0 {
		return ""
	}
	return repeat("[0-9]", m, n)
}

func digitClass(a, b byte) string {
	if a == b {
		return "[" + string(a) + "]"
	}
	return "[" + string(a) + "-" + string(b) + "]"
}

func all(s string, c byte) bool { return strings.Count(s, string(c)) == len(s) }

// sameLength matches the numbers from x to y, both written with the same
// number of digits.
func sameLength(x, y string) string {
	if x == y {
		return `"` + x + `"`
	}
	p := 0
	for x[p] == y[p] {
		p++
	}
	head := ""
	if p > 0 {
		head = `"` + x[:p] + `"`
	}
	dx, dy, xr, yr := x[p], y[p], x[p+1:], y[p+1:]
	k := len(xr)
	var body string
	switch {
	case k == 0:
		body = digitClass(dx, dy)
	case all(xr, '0') && all(yr, '9'):
		body = join(digitClass(dx, dy), digits(k, k))
	default:
		var alts []string
		from, to := dx, dy
		if !all(xr, '0') {
			alts = append(alts, join(`"`+string(dx)+`"`, group(atLeast(xr))))
			from++
		}
		var last string
		if !all(yr, '9') {
			last = join(`"`+string(dy)+`"`, group(atMost(yr)))
			to--
		}
		if from <= to {
			alts = append(alts, join(digitClass(from, to), digits(k, k)))
		}
		if last != "" {
			alts = append(alts, last)
		}
		body = strings.Join(alts, " | ")
	}
	if head == "" {
		return body
	}
	return join(head, group(body))
}

// atLeast matches the digit strings of len(s) that are at least s.
func atLeast(s string) string {
	k := len(s) - 1
	switch {
	case all(s, '0'):
		return digits(len(s), len(s))
	case k == 0:
		return digitClass(s[0], '9')
	}
	alt := join(`"`+s[:1]+`"`, group(atLeast(s[1:])))
	if s[0] == '9' {
		return alt
	}
	return alt + " | " + join(digitClass(s[0]+1, '9'), digits(k, k))
}

// atMost matches the digit strings of len(s) that are at most s.
func atMost(s string) string {
	k := len(s) - 1
	switch {
	case all(s, '9'):
		return digits(len(s), len(s))
	case k == 0:
		return digitClass('0', s[0])
	}
	alt := join(`"`+s[:1]+`"`, group(atMost(s[1:])))
	if s[0] == '0' {
		return alt
	}
	return join(digitClass('0', s[0]-1), digits(k, k)) + " | " + alt
}

// Fraction shapes: any, none (zeros only) and strictly positive.
const (
	fracAny     = `( "." [0-9]{1,16} )?`
	fracZero    = `( "." "0"{1,16} )?`
	fracNonZero = `"." [0-9]{0,15} [1-9]`
)

// numberRange matches the numbers within b (integer bounds; see numeric),
// as a non-negative part and a "-" part that each bound a magnitude.
func numberRange(b intBounds) string {
	var alts []string
	// x >= 0: magnitudes from max(lo, 0) up to hi.
	if !b.hasHi || b.hi > 0 || (b.hi == 0 && !b.hiEx) {
		lo, loEx := int64(0), false
		if b.hasLo && b.lo >= 0 {
			lo, loEx = b.lo, b.loEx
		}
		if s := magnitudes(lo, loEx, b.hi, b.hiEx, b.hasHi); s != "" {
			alts = append(alts, s)
		}
	}
	// x < 0: magnitudes above 0 (or -hi) up to -lo.
	if !b.hasLo || b.lo < 0 {
		from, fromEx := int64(0), true
		if b.hasHi && b.hi < 0 {
			from, fromEx = -b.hi, b.hiEx
		}
		if s := magnitudes(from, fromEx, -b.lo, b.loEx, b.hasLo); s != "" {
			alts = append(alts, `"-" `+group(s))
		}
	}
	return strings.Join(alts, " | ")
}

// magnitudes matches unsigned decimals between lo and hi (integers; each
// excluded or not; hi absent means the digit cap).
func magnitudes(lo int64, loEx bool, hi int64, hiEx, hasHi bool) string {
	var alts []string
	from, to := lo, intLimit
	if loEx {
		from++
	}
	if hasHi {
		to = hi - 1
	}
	if from <= to {
		alts = append(alts, join(group(natRange(from, to)), fracAny))
	}
	if loEx && (!hasHi || lo < hi) {
		alts = append(alts, join(`"`+strconv.FormatInt(lo, 10)+`"`, fracNonZero))
	}
	if hasHi && !hiEx && (hi > lo || (hi == lo && !loEx)) {
		alts = append(alts, join(`"`+strconv.FormatInt(hi, 10)+`"`, fracZero))
	}
	return strings.Join(alts, " | ")
}
