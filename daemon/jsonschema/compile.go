package jsonschema

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strings"
)

// compiler turns a decoded schema document into nodes, collecting every
// problem rather than stopping at the first.
type compiler struct {
	errs []error
	seen map[string]bool // error texts already reported
	root *defn
	defs map[string]*defn // by ref
	// order lists definitions as they appear, for deterministic output.
	order []*defn
	refs  []*node
}

func (c *compiler) fail(ptr string, sentinel error, format string, args ...any) {
	e := &SchemaError{Pointer: ptr, Message: fmt.Sprintf(format, args...), Err: sentinel}
	if c.seen[e.Error()] {
		return
	}
	c.seen[e.Error()] = true
	c.errs = append(c.errs, e)
}

// annotations are keywords that assert nothing; they are accepted and
// ignored everywhere.
var annotations = map[string]bool{
	"title": true, "description": true, "$comment": true, "default": true,
	"examples": true, "deprecated": true, "readOnly": true, "writeOnly": true,
	// format is an annotation unless a validator opts in (2019-09 and
	// later); ember does not, and says so in the package documentation.
	"format": true,
}

// rootOnly are keywords accepted only in the root schema object.
var rootOnly = map[string]bool{"$schema": true, "$id": true, "$defs": true, "definitions": true}

func (c *compiler) parse(ptr string, raw any, def *defn) *node {
	n := newNode(ptr, def)
	o, ok := raw.(*object)
	if !ok {
		if b, isBool := raw.(bool); isBool {
			if !b {
				c.fail(ptr, ErrUnsupported, "the schema false is only supported as additionalProperties")
			}
			return n
		}
		c.fail(ptr, ErrInvalidSchema, "a schema must be an object or a boolean, not %s", kindOf(raw))
		return n
	}
	for _, k := range o.dups {
		c.fail(ptr, ErrInvalidSchema, "keyword %q appears more than once", k)
	}
	var asserting []string // keywords other than annotations, for the $ref check
	for i, kw := range o.keys {
		v := o.vals[i]
		if rootOnly[kw] {
			if ptr != "" {
				c.fail(ptr, ErrUnsupported, "keyword %q is only supported in the root schema", kw)
				continue
			}
		} else if !annotations[kw] {
			asserting = append(asserting, kw)
		}
		c.keyword(n, kw, v)
	}
	if n.ref != "" {
		for _, kw := range asserting {
			if kw != "$ref" {
				c.fail(ptr, ErrUnsupported, "keyword %q next to \"$ref\" is not supported; move it into the definition", kw)
			}
		}
	}
	c.check(n)
	return n
}

func (c *compiler) keyword(n *node, kw string, v any) {
	switch kw {
	case "title", "description", "$comment", "format", "$schema", "$id",
		"deprecated", "readOnly", "writeOnly", "default", "examples":
		c.annotation(n.ptr, kw, v)
	case "$defs", "definitions":
		c.definitions(n.ptr, kw, v)
	case "$ref":
		s, ok := v.(string)
		if !ok || s == "" {
			c.fail(n.ptr, ErrInvalidSchema, "keyword \"$ref\" must be a non-empty string")
			return
		}
		n.ref = s
		c.refs = append(c.refs, n)
	case "type":
		c.parseType(n, v)
	case "enum":
		a, ok := v.([]any)
		if !ok || len(a) == 0 {
			c.fail(n.ptr, ErrInvalidSchema, "keyword \"enum\" must be a non-empty array")
			return
		}
		n.enum, n.hasEnum = a, true
	case "const":
		n.constVal, n.hasConst = v, true
	case "properties", "required", "additionalProperties":
		c.objectKeyword(n, kw, v)
	case "items", "minItems", "maxItems":
		c.arrayKeyword(n, kw, v)
	case "minLength", "maxLength", "pattern":
		c.stringKeyword(n, kw, v)
	case "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum":
		c.numberKeyword(n, kw, v)
	default:
		c.fail(n.ptr, ErrUnsupported, "keyword %q is not supported", kw)
	}
}

// annotation checks the type of a keyword that asserts nothing.
func (c *compiler) annotation(ptr, kw string, v any) {
	switch kw {
	case "default", "examples":
	case "deprecated", "readOnly", "writeOnly":
		if _, ok := v.(bool); !ok {
			c.fail(ptr, ErrInvalidSchema, "keyword %q must be a boolean, not %s", kw, kindOf(v))
		}
	default:
		if _, ok := v.(string); !ok {
			c.fail(ptr, ErrInvalidSchema, "keyword %q must be a string, not %s", kw, kindOf(v))
		}
	}
}

func (c *compiler) definitions(ptr, kw string, v any) {
	o, ok := v.(*object)
	if !ok {
		c.fail(ptr, ErrInvalidSchema, "keyword %q must be an object, not %s", kw, kindOf(v))
		return
	}
	for i, name := range o.keys {
		d := &defn{ref: "#/" + kw + "/" + pointerEscaper.Replace(name), name: name}
		c.defs[d.ref] = d
		c.order = append(c.order, d)
		d.node = c.parse(child(child(ptr, kw), name), o.vals[i], d)
	}
}

func (c *compiler) objectKeyword(n *node, kw string, v any) {
	ptr := n.ptr
	switch kw {
	case "properties":
		o, ok := v.(*object)
		if !ok {
			c.fail(ptr, ErrInvalidSchema, "keyword \"properties\" must be an object, not %s", kindOf(v))
			return
		}
		n.propIndex = make(map[string]*node, len(o.keys))
		for i, name := range o.keys {
			p := c.parse(child(child(ptr, "properties"), name), o.vals[i], n.def)
			n.props = append(n.props, property{name: name, node: p})
			n.propIndex[name] = p
		}
	case "required":
		a, ok := v.([]any)
		if !ok {
			c.fail(ptr, ErrInvalidSchema, "keyword \"required\" must be an array of strings, not %s", kindOf(v))
			return
		}
		seen := map[string]bool{}
		for _, e := range a {
			s, ok := e.(string)
			switch {
			case !ok:
				c.fail(ptr, ErrInvalidSchema, "keyword \"required\" must list strings, not %s", short(e))
			case seen[s]:
				c.fail(ptr, ErrInvalidSchema, "keyword \"required\" lists %q twice", s)
			default:
				seen[s] = true
				n.required = append(n.required, s)
			}
		}
	case "additionalProperties":
		if b, ok := v.(bool); ok {
			n.noAdditional = !b
			return
		}
		n.additional = c.parse(child(ptr, kw), v, n.def)
	}
}

func (c *compiler) arrayKeyword(n *node, kw string, v any) {
	switch kw {
	case "items":
		if _, ok := v.([]any); ok {
			c.fail(n.ptr, ErrUnsupported, "keyword \"items\" with an array (tuple validation) is not supported")
			return
		}
		n.items = c.parse(child(n.ptr, kw), v, n.def)
	case "minItems":
		n.minItems = c.count(n.ptr, kw, v)
	case "maxItems":
		n.maxItems = c.count(n.ptr, kw, v)
	}
}

func (c *compiler) stringKeyword(n *node, kw string, v any) {
	switch kw {
	case "minLength":
		n.minLength = c.count(n.ptr, kw, v)
	case "maxLength":
		n.maxLength = c.count(n.ptr, kw, v)
	case "pattern":
		s, ok := v.(string)
		if !ok {
			c.fail(n.ptr, ErrInvalidSchema, "keyword \"pattern\" must be a string, not %s", kindOf(v))
			return
		}
		re, err := regexp.Compile(s)
		if err != nil {
			// RE2 has no lookaround or backreferences, which ECMA-262
			// patterns may use.
			c.fail(n.ptr, ErrInvalidSchema, "pattern %q is not a Go (RE2) regular expression: %v", s, err)
			return
		}
		n.pattern = re
	}
}

func (c *compiler) numberKeyword(n *node, kw string, v any) {
	d := c.number(n.ptr, kw, v)
	switch kw {
	case "minimum":
		n.minimum = d
	case "maximum":
		n.maximum = d
	case "exclusiveMinimum":
		n.exclusiveMinimum = d
	case "exclusiveMaximum":
		n.exclusiveMaximum = d
	}
}

func (c *compiler) parseType(n *node, v any) {
	var names []any
	switch v := v.(type) {
	case string:
		names = []any{v}
	case []any:
		if len(v) == 0 {
			c.fail(n.ptr, ErrInvalidSchema, "keyword \"type\" must not be an empty array")
			return
		}
		names = v
	default:
		c.fail(n.ptr, ErrInvalidSchema, "keyword \"type\" must be a string or an array of strings, not %s", kindOf(v))
		return
	}
	n.types = 0
	for _, e := range names {
		s, _ := e.(string)
		t, ok := typeByName(s)
		switch {
		case !ok:
			c.fail(n.ptr, ErrInvalidSchema, "unknown type %s", short(e))
		case n.types&t != 0:
			c.fail(n.ptr, ErrInvalidSchema, "type %q is listed twice", s)
		}
		n.types |= t
	}
	if n.types == 0 {
		n.types = tAll // already reported; keep checking the rest
	}
}

// count reads a keyword whose value is a non-negative integer. Values too
// large for an int mean "no limit" in practice and are clamped.
func (c *compiler) count(ptr, kw string, v any) int {
	num, ok := v.(json.Number)
	d, _ := parseDecimal(string(num))
	if !ok || !d.isInt() || d.neg {
		c.fail(ptr, ErrInvalidSchema, "keyword %q must be a non-negative integer, not %s", kw, short(v))
		return 0
	}
	i, _ := d.intBound(false, math.MaxInt32)
	return int(i)
}

func (c *compiler) number(ptr, kw string, v any) *decimal {
	num, ok := v.(json.Number)
	if !ok {
		if _, isBool := v.(bool); isBool {
			c.fail(ptr, ErrUnsupported, "keyword %q as a boolean (draft 4) is not supported; give the bound itself", kw)
		} else {
			c.fail(ptr, ErrInvalidSchema, "keyword %q must be a number, not %s", kw, kindOf(v))
		}
		return nil
	}
	d, _ := parseDecimal(string(num))
	return &d
}

// check looks for keywords that contradict each other.
func (c *compiler) check(n *node) {
	if n.maxLength >= 0 && n.minLength > n.maxLength {
		c.fail(n.ptr, ErrInvalidSchema, "minLength %d is more than maxLength %d", n.minLength, n.maxLength)
	}
	if n.maxItems >= 0 && n.minItems > n.maxItems {
		c.fail(n.ptr, ErrInvalidSchema, "minItems %d is more than maxItems %d", n.minItems, n.maxItems)
	}
	lo, loEx := n.lower()
	hi, hiEx := n.upper()
	if lo != nil && hi != nil {
		if d := lo.cmp(*hi); d > 0 || (d == 0 && (loEx || hiEx)) {
			c.fail(n.ptr, ErrInvalidSchema, "no number is within the lower bound %s and the upper bound %s", lo.text, hi.text)
		}
	}
	if n.types&tObject == 0 {
		return
	}
	for _, r := range n.required {
		if _, ok := n.propIndex[r]; ok {
			continue
		}
		if n.noAdditional {
			c.fail(n.ptr, ErrInvalidSchema, "required property %q is not in properties, and additionalProperties is false", r)
		} else {
			c.fail(n.ptr, ErrUnsupported, "required property %q is not in properties; the grammar only writes declared properties", r)
		}
	}
}

// resolve points every $ref at its definition, refuses chains of $refs
// that never reach a schema, and finds the recursive definitions.
func (c *compiler) resolve() {
	for _, n := range c.refs {
		d, err := c.lookup(n.ref)
		if err != nil {
			c.errs = append(c.errs, &SchemaError{Pointer: n.ptr, Message: err.Error(), Err: unwrapSentinel(err)})
			continue
		}
		n.target = d
		n.def.refs = append(n.def.refs, d)
	}
	for _, d := range append([]*defn{c.root}, c.order...) {
		seen := map[*defn]bool{}
		path := []string{}
		for cur := d; cur != nil && cur.node.target != nil; cur = cur.node.target {
			if seen[cur] {
				c.fail(d.node.ptr, ErrInvalidSchema, "$ref cycle with no schema in between: %s", strings.Join(path, " → "))
				break
			}
			seen[cur] = true
			path = append(path, cur.node.ref)
		}
	}
	findCycles(append([]*defn{c.root}, c.order...))
}

type refError struct {
	msg      string
	sentinel error
}

func (e *refError) Error() string { return e.msg }
func (e *refError) Unwrap() error { return e.sentinel }

func unwrapSentinel(err error) error {
	if e, ok := err.(*refError); ok {
		return e.sentinel
	}
	return ErrInvalidSchema
}

// lookup finds the definition a $ref names. Only references into this
// document's root, $defs and definitions are supported: appliances have no
// network to fetch other documents from.
func (c *compiler) lookup(ref string) (*defn, error) {
	if ref == "#" {
		return c.root, nil
	}
	for _, kw := range []string{"$defs", "definitions"} {
		prefix := "#/" + kw + "/"
		rest, ok := strings.CutPrefix(ref, prefix)
		if !ok {
			continue
		}
		// A fragment is URI-encoded, then a JSON pointer.
		name, err := url.PathUnescape(rest)
		if err != nil {
			return nil, &refError{fmt.Sprintf("$ref %q is not a valid URI fragment", ref), ErrInvalidSchema}
		}
		if strings.Contains(name, "/") {
			break // a pointer into a definition
		}
		name = strings.NewReplacer("~1", "/", "~0", "~").Replace(name)
		if d := c.defs[prefix+pointerEscaper.Replace(name)]; d != nil {
			return d, nil
		}
		return nil, &refError{fmt.Sprintf("$ref %q names no definition", ref), ErrInvalidSchema}
	}
	return nil, &refError{fmt.Sprintf("$ref %q is not supported: only \"#\", \"#/$defs/NAME\" and \"#/definitions/NAME\" are", ref), ErrUnsupported}
}

// findCycles marks the definitions that can reach themselves through
// $refs, numbering strongly connected components (Tarjan's algorithm).
func findCycles(defs []*defn) {
	index := map[*defn]int{}
	low := map[*defn]int{}
	onStack := map[*defn]bool{}
	var stack []*defn
	next, comp := 0, 0
	var visit func(d *defn)
	visit = func(d *defn) {
		index[d], low[d] = next, next
		next++
		stack = append(stack, d)
		onStack[d] = true
		for _, e := range d.refs {
			if _, ok := index[e]; !ok {
				visit(e)
				low[d] = min(low[d], low[e])
			} else if onStack[e] {
				low[d] = min(low[d], index[e])
			}
		}
		if low[d] != index[d] {
			return
		}
		var members []*defn
		for {
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			onStack[top] = false
			top.scc = comp
			members = append(members, top)
			if top == d {
				break
			}
		}
		for _, m := range members {
			m.cyclic = len(members) > 1
			for _, e := range m.refs {
				if e == m {
					m.cyclic = true
				}
			}
		}
		comp++
	}
	for _, d := range defs {
		if _, ok := index[d]; !ok {
			visit(d)
		}
	}
}
