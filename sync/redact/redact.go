package redact

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// DefaultReplace is what replaces a match when a rule sets no Replace.
const DefaultReplace = "[REDACTED]"

// Rule is one redaction rule. Exactly one of Pattern, Field and Builtin
// is set. Its fields mirror config.RedactRule in name, type and order,
// so redact.Rule(r) converts one.
type Rule struct {
	// Pattern is a regular expression (Go's RE2 syntax) matched in every
	// string value.
	Pattern string
	// Field is a path: keys separated by dots, each optionally followed
	// by [N] or [*] array steps; a key of * matches any key.
	Field string
	// Builtin is one of Builtins.
	Builtin string
	// Replace replaces each match (Pattern, Builtin) or the whole value
	// (Field); empty means DefaultReplace.
	Replace string
}

// ErrBadRule is returned by New for a rule it cannot use.
var ErrBadRule = errors.New("bad redaction rule")

// Redactor applies rules to JSON documents. It is safe for concurrent
// use.
type Redactor struct {
	values []valueRule // Pattern and Builtin rules, in order
	fields []fieldRule
}

type valueRule struct {
	m       matcher
	replace string
}

type fieldRule struct {
	path    []step
	replace []byte // the JSON string that replaces the value
}

// New compiles rules. A nil or empty list gives a Redactor that only
// compacts.
func New(rules []Rule) (*Redactor, error) {
	r := &Redactor{}
	var errs []error
	for i, rule := range rules {
		set := 0
		for _, v := range []string{rule.Pattern, rule.Field, rule.Builtin} {
			if v != "" {
				set++
			}
		}
		if set != 1 {
			errs = append(errs, fmt.Errorf("%w %d: set exactly one of pattern, field and builtin", ErrBadRule, i))
			continue
		}
		replace := rule.Replace
		if replace == "" {
			replace = DefaultReplace
		}
		switch {
		case rule.Pattern != "":
			re, err := regexp.Compile(rule.Pattern)
			if err != nil {
				errs = append(errs, fmt.Errorf("%w %d: pattern: %w", ErrBadRule, i, err))
				continue
			}
			r.values = append(r.values, valueRule{regexMatcher{re: re}, replace})
		case rule.Builtin != "":
			m, ok := builtin(rule.Builtin)
			if !ok {
				errs = append(errs, fmt.Errorf("%w %d: builtin %q is not one of %s", ErrBadRule, i, rule.Builtin, strings.Join(Builtins, ", ")))
				continue
			}
			r.values = append(r.values, valueRule{m, replace})
		default:
			path, err := parsePath(rule.Field)
			if err != nil {
				errs = append(errs, fmt.Errorf("%w %d: field %q: %w", ErrBadRule, i, rule.Field, err))
				continue
			}
			r.fields = append(r.fields, fieldRule{path, quote(replace)})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// Empty reports whether r has no rules.
func (r *Redactor) Empty() bool { return r == nil || len(r.values)+len(r.fields) == 0 }

// Redact returns the compact JSON of data with every rule applied. It
// never fails: data that is not JSON (which the outbox never holds) is
// treated as one string value, with the Pattern and Builtin rules
// applied, or replaced whole when there are Field rules, since no path
// can be found in it. The result is always valid JSON. data is not
// modified.
func (r *Redactor) Redact(data []byte) []byte {
	if r.Empty() {
		var b bytes.Buffer
		b.Grow(len(data))
		if json.Compact(&b, data) == nil { // Compact validates as it goes
			return b.Bytes()
		}
		return r.notJSON(data)
	}
	if !json.Valid(data) {
		return r.notJSON(data)
	}
	w := walker{r: r, in: data, out: make([]byte, 0, len(data)+16)}
	w.value(w.skipSpace(0))
	return w.out
}

// notJSON redacts data that is not JSON as one string value.
func (r *Redactor) notJSON(data []byte) []byte {
	if r != nil && len(r.fields) > 0 {
		return slices.Clone(r.fields[0].replace)
	}
	return quote(r.applyValues(strings.ToValidUTF8(string(data), "\uFFFD")))
}

// maxPasses bounds applyValues for rules whose replacements other rules
// match; built-in and default replacements settle in two passes.
const maxPasses = 8

// applyValues runs the Pattern and Builtin rules over s in order, and
// again while a pass changed something: a replacement changes what stands
// next to a value (a serial number redacted from "0000A00A+0000000"
// leaves a phone number that was glued to it standing alone), and what
// leaves the device must hold nothing a rule would match.
func (r *Redactor) applyValues(s string) string {
	if r == nil {
		return s
	}
	for range maxPasses {
		changed := false
		for _, v := range r.values {
			ranges := v.m.find(s)
			if len(ranges) == 0 {
				continue
			}
			changed = true
			var b strings.Builder
			last := 0
			for _, rg := range ranges {
				b.WriteString(s[last:rg[0]])
				b.WriteString(v.replace)
				last = rg[1]
			}
			b.WriteString(s[last:])
			s = b.String()
		}
		if !changed {
			break
		}
	}
	return s
}

// walker copies a valid JSON document token by token, without the
// whitespace between tokens, rewriting string values and the values of
// matching paths.
type walker struct {
	r    *Redactor
	in   []byte
	out  []byte
	path []pathElem
}

func (w *walker) skipSpace(i int) int {
	for i < len(w.in) {
		switch w.in[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// value copies the value starting at in[i] and returns the index after it.
func (w *walker) value(i int) int {
	if rep, ok := w.fieldMatch(); ok {
		w.out = append(w.out, rep...)
		return w.skipValue(i)
	}
	switch w.in[i] {
	case '{':
		return w.object(i)
	case '[':
		return w.array(i)
	case '"':
		end := w.stringEnd(i)
		w.stringValue(w.in[i:end])
		return end
	default: // number, true, false, null
		j := i
		for j < len(w.in) && !isDelim(w.in[j]) {
			j++
		}
		w.out = append(w.out, w.in[i:j]...)
		return j
	}
}

func isDelim(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}

func (w *walker) object(i int) int {
	w.out = append(w.out, '{')
	i = w.skipSpace(i + 1)
	if w.in[i] == '}' {
		w.out = append(w.out, '}')
		return i + 1
	}
	for n := 0; ; n++ {
		if n > 0 {
			w.out = append(w.out, ',')
		}
		end := w.stringEnd(i)
		raw := w.in[i:end]
		w.out = append(w.out, raw...) // keys are never rewritten
		i = w.skipSpace(end)
		i = w.skipSpace(i + 1) // ':'
		w.out = append(w.out, ':')
		if len(w.r.fields) > 0 {
			w.path = append(w.path, pathElem{key: unquote(raw), index: -1})
		}
		i = w.skipSpace(w.value(i))
		if len(w.r.fields) > 0 {
			w.path = w.path[:len(w.path)-1]
		}
		if w.in[i] == '}' {
			w.out = append(w.out, '}')
			return i + 1
		}
		i = w.skipSpace(i + 1) // ','
	}
}

func (w *walker) array(i int) int {
	w.out = append(w.out, '[')
	i = w.skipSpace(i + 1)
	if w.in[i] == ']' {
		w.out = append(w.out, ']')
		return i + 1
	}
	for n := 0; ; n++ {
		if n > 0 {
			w.out = append(w.out, ',')
		}
		if len(w.r.fields) > 0 {
			w.path = append(w.path, pathElem{index: n})
		}
		i = w.skipSpace(w.value(i))
		if len(w.r.fields) > 0 {
			w.path = w.path[:len(w.path)-1]
		}
		if w.in[i] == ']' {
			w.out = append(w.out, ']')
			return i + 1
		}
		i = w.skipSpace(i + 1)
	}
}

// stringEnd returns the index after the string literal starting at in[i].
func (w *walker) stringEnd(i int) int {
	for j := i + 1; j < len(w.in); j++ {
		switch w.in[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(w.in)
}

// skipValue returns the index after the value starting at in[i].
func (w *walker) skipValue(i int) int {
	switch w.in[i] {
	case '"':
		return w.stringEnd(i)
	case '{', '[':
		depth := 0
		for j := i; j < len(w.in); j++ {
			switch w.in[j] {
			case '"':
				j = w.stringEnd(j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(w.in)
	default:
		j := i
		for j < len(w.in) && !isDelim(w.in[j]) {
			j++
		}
		return j
	}
}

// stringValue copies the string literal raw, rewritten by the value
// rules when any matches.
func (w *walker) stringValue(raw []byte) {
	if len(w.r.values) == 0 {
		w.out = append(w.out, raw...)
		return
	}
	s := unquote(raw)
	if t := w.r.applyValues(s); t != s {
		w.out = appendQuoted(w.out, t)
		return
	}
	w.out = append(w.out, raw...)
}

// unquote decodes a valid JSON string literal.
func unquote(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	json.Unmarshal(raw, &s) // valid JSON, so no error
	return s
}

// quote returns s as a JSON string literal.
func quote(s string) []byte { return appendQuoted(nil, s) }

// appendQuoted appends s as a JSON string literal, escaping only what
// JSON requires (no HTML escaping: the bytes are hashed as sent).
func appendQuoted(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
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
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
