package jsonschema

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxViolations bounds what Validate reports: a model's garbage can hold
// thousands, and a log line with the first few says as much.
const maxViolations = 50

// violations collects what a document does wrong.
type violations struct {
	errs    []error
	dropped int
}

func (vs *violations) add(ptr, format string, args ...any) {
	if len(vs.errs) >= maxViolations {
		vs.dropped++
		return
	}
	vs.errs = append(vs.errs, &ValidationError{Pointer: ptr, Message: fmt.Sprintf(format, args...)})
}

func (vs *violations) err() error {
	if vs.dropped > 0 {
		vs.errs = append(vs.errs, &ValidationError{Message: fmt.Sprintf("%d more violations not listed", vs.dropped)})
	}
	return errors.Join(vs.errs...)
}

// Validate checks a JSON document against the schema with the full meaning
// of every supported keyword, numeric ranges and patterns included, and
// returns every violation (up to 50) joined, each a *ValidationError that
// names the value by JSON pointer. Documents with duplicate member names
// or invalid UTF-8 are invalid too: a PLC's parser might read them either
// way. Validate is safe for concurrent use.
func (s *Schema) Validate(data []byte) error {
	v, err := decodeJSON(data)
	if err != nil {
		return &ValidationError{Message: "not valid JSON: " + err.Error()}
	}
	var vs violations
	check(s.root, v, "", &vs)
	return vs.err()
}

// matches reports whether v satisfies n, without building messages'
// list; the grammar uses it to keep only enum values the other keywords
// allow.
func matches(n *node, v any) bool {
	var vs violations
	check(n, v, "", &vs)
	return len(vs.errs) == 0
}

func check(n *node, v any, ptr string, vs *violations) {
	if n.target != nil {
		check(n.target.node, v, ptr, vs)
		return
	}
	if !n.types.allows(v) {
		vs.add(ptr, "expected %s, got %s", n.types, describe(v))
	}
	if n.hasConst && !equal(v, n.constVal) {
		vs.add(ptr, "%s is not the required value %s", short(v), short(n.constVal))
	}
	if n.hasEnum && !inEnum(n.enum, v) {
		vs.add(ptr, "%s is not one of %s", short(v), listValues(n.enum))
	}
	switch v := v.(type) {
	case *object:
		checkObject(n, v, ptr, vs)
	case []any:
		if len(v) < n.minItems {
			vs.add(ptr, "%d items are fewer than minItems %d", len(v), n.minItems)
		}
		if n.maxItems >= 0 && len(v) > n.maxItems {
			vs.add(ptr, "%d items are more than maxItems %d", len(v), n.maxItems)
		}
		if n.items != nil {
			for i, e := range v {
				check(n.items, e, child(ptr, strconv.Itoa(i)), vs)
			}
		}
	case string:
		checkString(n, v, ptr, vs)
	case json.Number:
		checkNumber(n, v, ptr, vs)
	}
}

func checkObject(n *node, o *object, ptr string, vs *violations) {
	for _, k := range o.dups {
		vs.add(child(ptr, k), "property %q appears more than once", k)
	}
	for _, r := range n.required {
		if _, ok := o.get(r); !ok {
			vs.add(ptr, "required property %q is missing", r)
		}
	}
	for i, k := range o.keys {
		p := child(ptr, k)
		switch sub := n.propIndex[k]; {
		case sub != nil:
			check(sub, o.vals[i], p, vs)
		case n.noAdditional:
			vs.add(p, "property %q is not allowed (additionalProperties is false)", k)
		case n.additional != nil:
			check(n.additional, o.vals[i], p, vs)
		}
	}
}

func checkString(n *node, s string, ptr string, vs *violations) {
	if n.minLength > 0 || n.maxLength >= 0 {
		// JSON Schema counts characters (code points), not bytes.
		l := utf8.RuneCountInString(s)
		if l < n.minLength {
			vs.add(ptr, "%s is %d characters, fewer than minLength %d", short(s), l, n.minLength)
		}
		if n.maxLength >= 0 && l > n.maxLength {
			vs.add(ptr, "%s is %d characters, more than maxLength %d", short(s), l, n.maxLength)
		}
	}
	if n.pattern != nil && !n.pattern.MatchString(s) {
		vs.add(ptr, "%s does not match the pattern %s", short(s), quoteJSON(n.pattern.String()))
	}
}

func checkNumber(n *node, num json.Number, ptr string, vs *violations) {
	d, ok := parseDecimal(string(num))
	if !ok {
		vs.add(ptr, "%q is not a JSON number", string(num))
		return
	}
	if n.minimum != nil && d.cmp(*n.minimum) < 0 {
		vs.add(ptr, "%s is less than the minimum %s", d.text, n.minimum.text)
	}
	if n.maximum != nil && d.cmp(*n.maximum) > 0 {
		vs.add(ptr, "%s is more than the maximum %s", d.text, n.maximum.text)
	}
	if n.exclusiveMinimum != nil && d.cmp(*n.exclusiveMinimum) <= 0 {
		vs.add(ptr, "%s is not more than the exclusive minimum %s", d.text, n.exclusiveMinimum.text)
	}
	if n.exclusiveMaximum != nil && d.cmp(*n.exclusiveMaximum) >= 0 {
		vs.add(ptr, "%s is not less than the exclusive maximum %s", d.text, n.exclusiveMaximum.text)
	}
}

func inEnum(enum []any, v any) bool {
	for _, e := range enum {
		if equal(e, v) {
			return true
		}
	}
	return false
}

// listValues renders an enum for a message, eliding a long one.
func listValues(vals []any) string {
	const limit = 10
	parts := make([]string, 0, min(len(vals), limit+1))
	for i, v := range vals {
		if i == limit {
			parts = append(parts, fmt.Sprintf("… (%d more)", len(vals)-limit))
			break
		}
		parts = append(parts, short(v))
	}
	return strings.Join(parts, ", ")
}

// describe names a value's type and, for scalars, the value.
func describe(v any) string {
	switch v.(type) {
	case *object, []any:
		return kindOf(v)
	case nil:
		return "null"
	}
	return kindOf(v) + " " + short(v)
}
