package jsonschema

import (
	"strconv"
	"strings"
)

// decimal is a JSON number held exactly: 0.digits × 10^exp, digits without
// leading or trailing zeros (empty for zero). Comparing decimals, unlike
// float64s, never calls 500.00000000000000001 equal to 500, and a
// document's 1e999999999 costs nothing to hold.
type decimal struct {
	neg    bool
	digits string
	exp    int64
	text   string // as written, for messages
}

// expLimit saturates exponents; beyond it every number compares as
// infinitely large or small, which is right for any bound a schema holds.
const expLimit = 1 << 40

// parseDecimal parses JSON number syntax; ok is false for anything else.
func parseDecimal(s string) (d decimal, ok bool) {
	d.text = s
	i := 0
	if i < len(s) && s[i] == '-' {
		d.neg = true
		i++
	}
	start := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intPart := s[start:i]
	if intPart == "" || (len(intPart) > 1 && intPart[0] == '0') {
		return d, false
	}
	var frac string
	if i < len(s) && s[i] == '.' {
		i++
		start = i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		frac = s[start:i]
		if frac == "" {
			return d, false
		}
	}
	var exp10 int64
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		negExp := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			negExp = s[i] == '-'
			i++
		}
		start = i
		for i < len(s) && isDigit(s[i]) {
			if exp10 < expLimit {
				exp10 = exp10*10 + int64(s[i]-'0')
			}
			i++
		}
		if start == i {
			return d, false
		}
		if negExp {
			exp10 = -exp10
		}
	}
	if i != len(s) {
		return d, false
	}
	all := intPart + frac
	point := int64(len(intPart))
	trimmed := strings.TrimLeft(all, "0")
	point -= int64(len(all) - len(trimmed))
	d.digits = strings.TrimRight(trimmed, "0")
	if d.digits == "" {
		d.neg = false
		return d, true
	}
	d.exp = max(min(point+exp10, expLimit), -expLimit)
	return d, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func (d decimal) sign() int {
	switch {
	case d.digits == "":
		return 0
	case d.neg:
		return -1
	}
	return 1
}

// cmp returns -1, 0 or 1 as d is less than, equal to or more than e.
func (d decimal) cmp(e decimal) int {
	ds, es := d.sign(), e.sign()
	if ds != es || ds == 0 {
		return cmpInt(ds, es)
	}
	m := cmpMagnitude(d, e)
	if ds < 0 {
		return -m
	}
	return m
}

func cmpMagnitude(d, e decimal) int {
	if d.exp != e.exp {
		return cmpInt(d.exp, e.exp)
	}
	// Normalised digits compare as strings: without trailing zeros, a
	// proper prefix is the smaller number.
	return strings.Compare(d.digits, e.digits)
}

func cmpInt[T int | int64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// isInt reports whether d has no fractional part: JSON Schema counts 1.0
// as an integer.
func (d decimal) isInt() bool { return d.digits == "" || int64(len(d.digits)) <= d.exp }

// intBound rounds d to an integer (up when ceil, else down) and clamps it
// to ±limit; clamped says the clamp changed it.
func (d decimal) intBound(ceil bool, limit int64) (v int64, clamped bool) {
	if d.digits == "" {
		return 0, false
	}
	var whole int64
	fraction := false
	switch {
	case d.exp > 18:
		return clampSigned(d.neg, limit), true
	case d.exp <= 0:
		fraction = true
	default:
		n := min(int(d.exp), len(d.digits))
		whole, _ = strconv.ParseInt(d.digits[:n], 10, 64)
		for i := n; i < int(d.exp); i++ {
			whole *= 10
		}
		fraction = len(d.digits) > int(d.exp)
	}
	if d.neg {
		whole = -whole
	}
	if fraction {
		if ceil && !d.neg {
			whole++
		} else if !ceil && d.neg {
			whole--
		}
	}
	if whole > limit {
		return limit, true
	}
	if whole < -limit {
		return -limit, true
	}
	return whole, false
}

func clampSigned(neg bool, limit int64) int64 {
	if neg {
		return -limit
	}
	return limit
}

// decimalOf returns the exact decimal of an int64.
func decimalOf(v int64) decimal {
	d, _ := parseDecimal(strconv.FormatInt(v, 10))
	return d
}
