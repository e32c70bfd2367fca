// Package jsonschema makes a model's structured output safe to hand to a
// PLC. A pipeline whose output is `format: json` carries a JSON Schema;
// Compile turns it into two things:
//
//   - a llama.cpp GBNF grammar (Schema.Grammar) that constrains decoding,
//     so that even a model that has never seen the schema can only write
//     a complete, parseable document that fits it, and
//   - a validator (Schema.Validate) that checks the text again in Go
//     before it is published, with the schema's full meaning.
//
// The grammar is the reason output is valid; the validator is the reason
// nothing invalid is ever published, whatever the grammar missed.
//
// # Supported keywords
//
// Compile accepts a subset of JSON Schema (draft 2020-12 and the drafts
// before it back to draft 6) and refuses every other keyword with an
// error naming it and the JSON pointer of its schema object, such as
//
//	schema /properties/temp: keyword "oneOf" is not supported
//
// rather than ignoring what it cannot enforce. Supported:
//
//   - type: object, array, string, number, integer, boolean, null, or a
//     list of them. An integer is a number without a fractional part:
//     1.0 is one.
//   - properties, required, additionalProperties. The grammar writes the
//     declared properties in the schema's order, required ones always and
//     optional ones or not, and never writes undeclared properties,
//     whatever additionalProperties says (false, true, a schema or
//     absent); the validator follows the specification, so documents from
//     elsewhere with extra properties pass where the schema allows them.
//     A required property that is not declared is therefore an error.
//   - items (one schema; tuple forms are refused), minItems, maxItems.
//   - minLength, maxLength (in characters, as the specification counts).
//   - minimum, maximum, exclusiveMinimum, exclusiveMaximum (draft 6
//     numeric forms). The grammar enforces integer ranges exactly, and
//     number ranges exactly when the bounds are integers; a bound with a
//     fraction is rounded outwards in the grammar and checked only by
//     Validate. The validator compares decimals exactly, never as floats.
//   - enum, const, compared as JSON Schema says (1 equals 1.0, objects
//     regardless of member order). The grammar writes the values compactly,
//     only those that satisfy the node's other keywords.
//   - pattern, with Go's regexp (RE2) syntax, unanchored as the
//     specification says. RE2 has no lookaround or backreferences, so an
//     ECMA-262 pattern using them fails to compile; \s matches ASCII
//     whitespace only and . excludes only \n, where ECMA-262 also treats
//     Unicode spaces and line separators. Patterns whose structure GBNF can
//     express (anchored or not; literals, classes, alternation, bounded or
//     capped repetition) are enforced by the grammar; others (\b, ^ or $
//     inside the pattern, multi-line mode) only by Validate.
//   - $ref to "#", "#/$defs/NAME" or "#/definitions/NAME", recursive or
//     not, alone in its schema object (other assertions next to it are
//     refused). $defs and definitions are read in the root only.
//   - Annotations, accepted and ignored: title, description, $comment,
//     default, examples, deprecated, readOnly, writeOnly, and $schema and
//     $id in the root. format is ignored too: since draft 2019-09 it is an
//     annotation unless a validator opts in, and ember does not; use
//     pattern for what must hold.
//
// Schema.Gaps lists where the grammar admits documents the schema does
// not (untranslatable patterns, fractional number bounds) so that the
// daemon can log them when it loads a pipeline.
//
// # Termination
//
// On an appliance, generation must end with a complete document within
// max_tokens, whatever the model: a small or confused model can write a
// string, a digit run or a list forever if the grammar lets it. So every
// grammar this package writes matches a finite language, and
// Schema.MaxBytes says how long its longest document is:
//
//   - strings hold at most Options.MaxStringLength characters (256 by
//     default), less if maxLength says so;
//   - arrays hold at most Options.MaxItems items (64 by default), less if
//     maxItems says so;
//   - numbers have at most 16 digits before and 16 after the point, and
//     no exponent;
//   - recursive $refs unroll Options.MaxDepth times (5 by default), and
//     values the schema leaves open ({}) nest arrays that deep, with empty
//     objects only;
//   - whitespace between tokens is at most one space or newline, and
//     nothing follows the document.
//
// The caps narrow the grammar, never the schema: a longer string from
// elsewhere still validates. A schema that needs more than the caps allow
// (minLength above the string cap, recursion that never bottoms out) fails
// to compile. llama.cpp refuses a repetition of 2000 or more and silently
// treats a larger upper bound as unbounded, so the caps stop at 1999.
// Because llama.cpp never samples a token with an empty piece under a
// grammar, a request with max_tokens of MaxBytes()+1 always completes.
//
// Strings admit any character JSON allows raw except DEL, surrogates and
// code points past U+10FFFF, plus escapes (\u escapes of surrogates
// excluded). llama.cpp decodes the model's bytes leniently; excluding those
// makes it refuse byte-fallback tokens that would spell invalid UTF-8,
// which the engine would turn into U+FFFD after the grammar accepted them.
// An overlong encoding spelled byte by byte (E0 82 80) still passes
// llama.cpp's check; no trained model writes one, and Validate is the
// backstop.
//
// Sampling with ignore_eos and a grammar cannot work: once the document is
// complete the grammar allows only the end-of-generation token.
package jsonschema
