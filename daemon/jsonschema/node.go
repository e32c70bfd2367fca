package jsonschema

import (
	"encoding/json"
	"regexp"
	"strings"
)

// typeSet is a set of JSON Schema types.
type typeSet uint8

const (
	tNull typeSet = 1 << iota
	tBoolean
	tObject
	tArray
	tNumber
	tInteger
	tString

	tAll = tNull | tBoolean | tObject | tArray | tNumber | tInteger | tString
)

// typeNames is the order types are listed in, in messages and grammars.
var typeNames = []struct {
	t    typeSet
	name string
}{
	{tObject, "object"}, {tArray, "array"}, {tString, "string"}, {tNumber, "number"},
	{tInteger, "integer"}, {tBoolean, "boolean"}, {tNull, "null"},
}

func typeByName(name string) (typeSet, bool) {
	for _, tn := range typeNames {
		if tn.name == name {
			return tn.t, true
		}
	}
	return 0, false
}

func (s typeSet) String() string {
	var names []string
	for _, tn := range typeNames {
		if s&tn.t != 0 {
			names = append(names, tn.name)
		}
	}
	switch len(names) {
	case 0:
		return "nothing"
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// allows reports whether v is of one of the types; an integer is a number
// whose value has no fractional part, however it is written.
func (s typeSet) allows(v any) bool {
	switch v := v.(type) {
	case nil:
		return s&tNull != 0
	case bool:
		return s&tBoolean != 0
	case string:
		return s&tString != 0
	case []any:
		return s&tArray != 0
	case *object:
		return s&tObject != 0
	case json.Number:
		if s&tNumber != 0 {
			return true
		}
		d, _ := parseDecimal(string(v))
		return s&tInteger != 0 && d.isInt()
	}
	return false
}

// node is one compiled schema object. Keywords that are absent hold their
// zero meaning: types tAll, maxItems and maxLength -1, nil bounds.
type node struct {
	ptr string // where it is in the schema document
	def *defn  // the definition (or the root document) it is part of

	types typeSet

	// ref, when not "", makes the node a reference to target and nothing
	// else: Compile refuses other assertions next to $ref.
	ref    string
	target *defn

	enum     []any
	hasEnum  bool
	constVal any
	hasConst bool

	props        []property
	propIndex    map[string]*node
	required     []string
	additional   *node // schema for undeclared members; nil when absent or true
	noAdditional bool  // additionalProperties: false

	items    *node // nil: any value
	minItems int
	maxItems int

	minLength int
	maxLength int
	pattern   *regexp.Regexp

	minimum, maximum, exclusiveMinimum, exclusiveMaximum *decimal
}

type property struct {
	name string
	node *node
}

func newNode(ptr string, def *defn) *node {
	return &node{ptr: ptr, def: def, types: tAll, maxItems: -1, maxLength: -1}
}

// lower returns the tighter of minimum and exclusiveMinimum, and whether it
// is exclusive; nil when there is neither.
func (n *node) lower() (*decimal, bool) {
	switch {
	case n.minimum == nil:
		return n.exclusiveMinimum, n.exclusiveMinimum != nil
	case n.exclusiveMinimum == nil:
		return n.minimum, false
	case n.exclusiveMinimum.cmp(*n.minimum) >= 0:
		return n.exclusiveMinimum, true
	}
	return n.minimum, false
}

// upper is lower's counterpart for maximum and exclusiveMaximum.
func (n *node) upper() (*decimal, bool) {
	switch {
	case n.maximum == nil:
		return n.exclusiveMaximum, n.exclusiveMaximum != nil
	case n.exclusiveMaximum == nil:
		return n.maximum, false
	case n.exclusiveMaximum.cmp(*n.maximum) <= 0:
		return n.exclusiveMaximum, true
	}
	return n.maximum, false
}

// defn is a definition a $ref can name: one of the root's $defs or
// definitions, or the root document itself ("#").
type defn struct {
	ref  string // "#", "#/$defs/name" or "#/definitions/name"
	name string // for grammar rule names
	node *node
	// refs are the definitions $refs inside this one name.
	refs []*defn
	// cyclic is true when a chain of $refs leads from the definition back
	// to it; scc numbers the strongly connected component it is in.
	cyclic bool
	scc    int
}
