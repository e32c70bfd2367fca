package fleet

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// The canonical encoding (FORMAT.md, "Canonical encoding") is what
// signatures cover. It follows RFC 8785 (JCS) and is stricter on input:
// duplicate keys, invalid UTF-8, lone surrogates and integer literals
// that a float64 cannot hold exactly are errors rather than something to guess about,
// because a signer and a verifier that parse one document differently
// would sign one thing and install another.

// maxDepth bounds nesting so a hostile document cannot exhaust the stack.
const maxDepth = 64

// maxSafeInteger is 2^53-1, the largest integer every JSON reader holds
// exactly.
const maxSafeInteger = 1<<53 - 1

type jsonKind uint8

const (
	jsonNull jsonKind = iota
	jsonBool
	jsonNumber
	jsonString
	jsonArray
	jsonObject
)

// jsonValue is a parsed JSON value. Numbers keep their canonical text.
type jsonValue struct {
	kind jsonKind
	b    bool
	s    string // a string, or a number's canonical text
	arr  []*jsonValue
	obj  []jsonMember // in document order
}

type jsonMember struct {
	key string
	val *jsonValue
}

// member returns the value of key in an object, or nil.
func (v *jsonValue) member(key string) *jsonValue {
	for _, m := range v.obj {
		if m.key == key {
			return m.val
		}
	}
	return nil
}

// Canonicalize parses data as one JSON value and returns its canonical
// encoding: object keys sorted by their UTF-16 code units, no insignificant
// whitespace, strings with only the escapes JSON requires, numbers in their
// shortest round-trip form (integers as integers). It refuses duplicate
// keys, invalid UTF-8, lone surrogates and integer literals beyond
// ±(2^53-1) that a double cannot hold exactly, which RFC 8785 would
// silently round.
func Canonicalize(data []byte) ([]byte, error) {
	v, err := parseJSON(data)
	if err != nil {
		return nil, err
	}
	return appendCanonical(nil, v), nil
}

// parseJSON parses one JSON value that fills data, whitespace aside.
func parseJSON(data []byte) (*jsonValue, error) {
	p := &jsonParser{data: data}
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, p.errorf("unexpected data after the JSON value")
	}
	return v, nil
}

type jsonParser struct {
	data []byte
	pos  int
}

// SyntaxError is a JSON document that the strict parser refuses, with the
// byte offset where it went wrong.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("json at byte %d: %s", e.Offset, e.Msg) }

func (p *jsonParser) errorf(format string, args ...any) error {
	return &SyntaxError{Offset: p.pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *jsonParser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (*jsonValue, error) {
	if depth > maxDepth {
		return nil, p.errorf("nested deeper than %d", maxDepth)
	}
	if p.pos >= len(p.data) {
		return nil, p.errorf("unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return &jsonValue{kind: jsonString, s: s}, nil
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case p.literal("true"):
		return &jsonValue{kind: jsonBool, b: true}, nil
	case p.literal("false"):
		return &jsonValue{kind: jsonBool}, nil
	case p.literal("null"):
		return &jsonValue{kind: jsonNull}, nil
	}
	return nil, p.errorf("unexpected character %q", p.data[p.pos])
}

func (p *jsonParser) literal(word string) bool {
	if bytes.HasPrefix(p.data[p.pos:], []byte(word)) {
		p.pos += len(word)
		return true
	}
	return false
}

func (p *jsonParser) object(depth int) (*jsonValue, error) {
	p.pos++ // {
	v := &jsonValue{kind: jsonObject, obj: []jsonMember{}}
	seen := map[string]bool{}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return v, nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, p.errorf("want a string key")
		}
		at := p.pos
		key, err := p.str()
		if err != nil {
			return nil, err
		}
		if seen[key] {
			return nil, &SyntaxError{Offset: at, Msg: fmt.Sprintf("duplicate key %q", key)}
		}
		seen[key] = true
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, p.errorf("want ':' after key %q", key)
		}
		p.pos++
		p.skipSpace()
		val, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		v.obj = append(v.obj, jsonMember{key: key, val: val})
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.errorf("unexpected end of input in an object")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return v, nil
		default:
			return nil, p.errorf("want ',' or '}' in an object")
		}
	}
}

func (p *jsonParser) array(depth int) (*jsonValue, error) {
	p.pos++ // [
	v := &jsonValue{kind: jsonArray, arr: []*jsonValue{}}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return v, nil
	}
	for {
		p.skipSpace()
		item, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		v.arr = append(v.arr, item)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.errorf("unexpected end of input in an array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return v, nil
		default:
			return nil, p.errorf("want ',' or ']' in an array")
		}
	}
}

// str parses a string literal, validating UTF-8 and surrogate pairs.
func (p *jsonParser) str() (string, error) {
	p.pos++ // "
	var b []byte
	for {
		if p.pos >= len(p.data) {
			return "", p.errorf("unterminated string")
		}
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			return string(b), nil
		case c < 0x20:
			return "", p.errorf("control character %#02x in a string must be escaped", c)
		case c == '\\':
			r, err := p.escape()
			if err != nil {
				return "", err
			}
			b = utf8.AppendRune(b, r)
		case c < utf8.RuneSelf:
			b = append(b, c)
			p.pos++
		default:
			r, size := utf8.DecodeRune(p.data[p.pos:])
			if r == utf8.RuneError && size == 1 {
				return "", p.errorf("invalid UTF-8")
			}
			b = append(b, p.data[p.pos:p.pos+size]...)
			p.pos += size
		}
	}
}

func (p *jsonParser) escape() (rune, error) {
	if p.pos+1 >= len(p.data) {
		return 0, p.errorf("unterminated escape")
	}
	c := p.data[p.pos+1]
	p.pos += 2
	switch c {
	case '"', '\\', '/':
		return rune(c), nil
	case 'b':
		return '\b', nil
	case 'f':
		return '\f', nil
	case 'n':
		return '\n', nil
	case 'r':
		return '\r', nil
	case 't':
		return '\t', nil
	case 'u':
		r, err := p.hex4()
		if err != nil {
			return 0, err
		}
		switch {
		case utf16.IsSurrogate(r) && r < 0xdc00:
			if !bytes.HasPrefix(p.data[p.pos:], []byte(`\u`)) {
				return 0, p.errorf("lone surrogate \\u%04x", r)
			}
			p.pos += 2
			lo, err := p.hex4()
			if err != nil {
				return 0, err
			}
			pair := utf16.DecodeRune(r, lo)
			if pair == utf8.RuneError {
				return 0, p.errorf("bad surrogate pair \\u%04x\\u%04x", r, lo)
			}
			return pair, nil
		case utf16.IsSurrogate(r):
			return 0, p.errorf("lone surrogate \\u%04x", r)
		}
		return r, nil
	}
	return 0, p.errorf("unknown escape \\%c", c)
}

func (p *jsonParser) hex4() (rune, error) {
	if p.pos+4 > len(p.data) {
		return 0, p.errorf("short \\u escape")
	}
	n, err := strconv.ParseUint(string(p.data[p.pos:p.pos+4]), 16, 16)
	if err != nil {
		return 0, p.errorf("bad \\u escape %q", p.data[p.pos:p.pos+4])
	}
	p.pos += 4
	return rune(n), nil
}

// number parses a number literal by JSON's grammar and stores its
// canonical text.
func (p *jsonParser) number() (*jsonValue, error) {
	start := p.pos
	digits := func() int {
		n := 0
		for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	if p.data[p.pos] == '-' {
		p.pos++
	}
	intStart := p.pos
	if digits() == 0 {
		return nil, p.errorf("want digits in a number")
	}
	if p.data[intStart] == '0' && p.pos-intStart > 1 {
		return nil, &SyntaxError{Offset: intStart, Msg: "leading zero in a number"}
	}
	integer := true
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		integer = false
		p.pos++
		if digits() == 0 {
			return nil, p.errorf("want digits after '.'")
		}
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		integer = false
		p.pos++
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return nil, p.errorf("want digits in an exponent")
		}
	}
	lit := string(p.data[start:p.pos])
	text, err := canonicalNumber(lit, integer)
	if err != nil {
		return nil, &SyntaxError{Offset: start, Msg: err.Error()}
	}
	return &jsonValue{kind: jsonNumber, s: text}, nil
}

var errNumberRange = errors.New("number out of range")

// canonicalNumber returns the RFC 8785 form of a valid number literal.
func canonicalNumber(lit string, integer bool) (string, error) {
	if integer {
		n, err := strconv.ParseInt(lit, 10, 64)
		if err == nil && n <= maxSafeInteger && n >= -maxSafeInteger {
			return strconv.FormatInt(n, 10), nil // "-0" becomes "0"
		}
		// Beyond 2^53 an integer survives only if it is already the
		// shortest form of a double (10000000010000000000, as 1.000000001e19
		// is written); any other would be rounded without a word.
		f, ferr := strconv.ParseFloat(lit, 64)
		if ferr != nil || formatES6(f) != lit {
			return "", fmt.Errorf("integer %s is beyond ±(2^53-1) and would be rounded: %w", lit, errNumberRange)
		}
		return lit, nil
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return "", fmt.Errorf("number %s: %w", lit, errNumberRange)
	}
	return formatES6(f), nil
}

// formatES6 formats f as ECMAScript's Number.prototype.toString does,
// which RFC 8785 adopts: the shortest digits that round-trip, exponent
// form below 1e-6 and from 1e21.
func formatES6(f float64) string {
	if f == 0 {
		return "0" // also -0
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs < 1e-6 || abs >= 1e21 {
		format = 'e'
	}
	b := strconv.AppendFloat(nil, f, format, -1, 64)
	if format == 'e' {
		// Go writes e-07 where ECMAScript writes e-7.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return string(b)
}

// appendCanonical appends v's canonical encoding to b.
func appendCanonical(b []byte, v *jsonValue) []byte {
	switch v.kind {
	case jsonNull:
		return append(b, "null"...)
	case jsonBool:
		if v.b {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	case jsonNumber:
		return append(b, v.s...)
	case jsonString:
		return appendString(b, v.s)
	case jsonArray:
		b = append(b, '[')
		for i, item := range v.arr {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendCanonical(b, item)
		}
		return append(b, ']')
	}
	members := slices.Clone(v.obj)
	slices.SortFunc(members, func(x, y jsonMember) int { return compareUTF16(x.key, y.key) })
	b = append(b, '{')
	for i, m := range members {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, m.key)
		b = append(b, ':')
		b = appendCanonical(b, m.val)
	}
	return append(b, '}')
}

// appendString writes s with RFC 8785's escapes: \" \\ \b \f \n \r \t,
// \u00xx (lower-case hex) for other control characters, everything else
// as UTF-8.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// compareUTF16 orders strings by their UTF-16 code units, as RFC 8785
// sorts keys. It differs from byte order only for characters above U+FFFF
// against those in U+E000..U+FFFF.
func compareUTF16(a, b string) int {
	ua, ub := utf16.Encode([]rune(a)), utf16.Encode([]rune(b))
	return slices.Compare(ua, ub)
}
