package jsonschema

import (
	"errors"
	"fmt"
	"slices"
)

// Schema is a compiled JSON Schema: a grammar that constrains decoding and
// a validator for what was decoded. It is immutable and safe for
// concurrent use.
type Schema struct {
	root     *node
	grammar  string
	maxBytes int
	gaps     []string
	opts     Options
}

// Compile compiles a JSON Schema document with the default Options.
func Compile(schema []byte) (*Schema, error) {
	return Options{}.Compile(schema)
}

// Compile compiles a JSON Schema document (JSON text; see FromYAML for a
// schema written in YAML). It returns every problem it finds, joined: each
// a *SchemaError wrapping ErrUnsupported or ErrInvalidSchema and naming
// the keyword and the JSON pointer of the schema object. A schema no
// document can satisfy within the Options' caps fails too, so that a
// Schema always has a grammar a model can complete.
func (o Options) Compile(schema []byte) (*Schema, error) {
	opts, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	doc, err := decodeJSON(schema)
	if err != nil {
		return nil, &SchemaError{Message: "not valid JSON: " + err.Error(), Err: ErrInvalidSchema}
	}
	c := &compiler{seen: map[string]bool{}, defs: map[string]*defn{}}
	c.root = &defn{ref: "#", name: "root"}
	c.root.node = c.parse("", doc, c.root)
	if len(c.errs) == 0 {
		c.resolve()
	}
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	g := newGrammarBuilder(c, opts)
	text, maxBytes, ok := g.build(c.root.node)
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	if !ok {
		return nil, &SchemaError{Err: ErrUnsupported, Message: fmt.Sprintf(
			"every document nests recursive $refs more than %d deep (Options.MaxDepth)", opts.MaxDepth)}
	}
	return &Schema{root: c.root.node, grammar: text, maxBytes: maxBytes, gaps: g.gaps, opts: opts}, nil
}

// Grammar returns the schema as a llama.cpp GBNF grammar whose start rule
// is "root", for engine.Request.Grammar. Every document it matches is
// valid JSON within the Options' caps, and every one is valid against the
// schema except where Gaps says otherwise.
func (s *Schema) Grammar() string { return s.grammar }

// MaxBytes is the length of the longest document the grammar matches. A
// model sampling under the grammar writes at least one byte per token, so
// a request with max_tokens of MaxBytes()+1 or more always ends with a
// complete document. It saturates at math.MaxInt for schemas whose nesting
// multiplies the caps beyond any practical token budget.
func (s *Schema) MaxBytes() int { return s.maxBytes }

// Gaps lists, for logging at load time, where the grammar admits documents
// the schema does not, so that only Validate catches them: patterns too
// complex to translate, number bounds with a fraction. Each entry starts
// with the JSON pointer of the schema object. Nil when the grammar alone
// guarantees valid documents.
func (s *Schema) Gaps() []string { return slices.Clone(s.gaps) }

// Options returns the caps the schema was compiled with, defaults filled
// in.
func (s *Schema) Options() Options { return s.opts }
