package jsonschema

import (
	"errors"
	"strings"
	"testing"
)

// goodSchemas compile, and the tests that sample from grammars use them
// all.
var goodSchemas = []struct{ name, schema string }{
	{"alarm", alarmSchema},
	{"empty schema", `{}`},
	{"true", `true`},
	{"every annotation", `{"$schema":"https://json-schema.org/draft/2020-12/schema","$id":"urn:ember:alarm","title":"t","description":"d",
		"$comment":"c","default":1,"examples":[1],"deprecated":false,"readOnly":true,"writeOnly":false,"format":"date-time","type":"string"}`},
	{"type list", `{"type":["string","null"],"maxLength":3}`},
	{"integer and number", `{"type":["integer","number"]}`},
	{"every scalar type", `{"type":"array","items":{"type":["boolean","null","integer"]},"maxItems":3}`},
	{"nested objects", `{"type":"object","properties":{"a":{"type":"object","properties":{"b":{"type":"object",
		"properties":{"c":{"type":"integer"}},"required":["c"]}}}}}`},
	{"only optional properties", `{"type":"object","properties":{"a":{"type":"boolean"},"b":{"type":"null"},"c":{"type":"integer"}}}`},
	{"required in the middle", `{"type":"object","properties":{"a":{"type":"boolean"},"b":{"type":"null"},"c":{"type":"integer"},"d":{}},"required":["c"]}`},
	{"additionalProperties schema", `{"type":"object","properties":{"a":{"type":"integer"}},"additionalProperties":{"type":"string"}}`},
	{"additionalProperties false with required", `{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"],"additionalProperties":false}`},
	{"awkward property names", `{"type":"object","properties":{"":{"type":"null"},"root":{"type":"null"},"a b\"c\\d\n":{"type":"null"},"温度":{"type":"null"},"ws":{"const":1},"string":{"enum":["x"]}},
		"required":["","root","a b\"c\\d\n","温度","ws","string"]}`},
	{"enum of every kind", `{"enum":[null,true,1.50,"a\"b\\c\u0001é",[1,{"x":[]}],{"k":"v"}]}`},
	{"enum filtered by type", `{"type":"string","enum":["a",1,null,"b"]}`},
	{"const object", `{"const":{"mode":"auto","limits":[1,2]}}`},
	{"string lengths", `{"type":"string","minLength":2,"maxLength":5}`},
	{"maxLength above the cap", `{"type":"string","maxLength":100000}`},
	{"array bounds", `{"type":"array","minItems":2,"maxItems":4,"items":{"type":"integer"}}`},
	{"array without items", `{"type":"array","maxItems":2}`},
	{"integer range", `{"type":"integer","minimum":-40,"maximum":125}`},
	{"integer exclusive range", `{"type":"integer","exclusiveMinimum":-1,"exclusiveMaximum":1000}`},
	{"integer lower bound only", `{"type":"integer","minimum":7}`},
	{"integer upper bound only", `{"type":"integer","maximum":-7}`},
	{"integer fractional bounds", `{"type":"integer","minimum":0.5,"maximum":2.5}`},
	{"integer huge bounds", `{"type":"integer","minimum":-1e300,"maximum":1e300}`},
	{"number range", `{"type":"number","minimum":0,"maximum":500}`},
	{"number exclusive range", `{"type":"number","exclusiveMinimum":-1,"exclusiveMaximum":1}`},
	{"number fractional bounds", `{"type":"number","minimum":-0.5,"maximum":99.9}`},
	{"number negative range", `{"type":"number","minimum":-20,"exclusiveMaximum":-10}`},
	{"patterns", `{"type":"object","properties":{
		"tag":{"type":"string","pattern":"^[A-Z]{2}-[0-9]{3}$"},
		"any":{"type":"string","pattern":"^.*$"},
		"not":{"type":"string","pattern":"^[^a]+$"},
		"fold":{"type":"string","pattern":"(?i)^ok|^fail"},
		"inside":{"type":"string","pattern":"pump"},
		"escapes":{"type":"string","pattern":"^[\"\\\\\\n]{1,3}$"},
		"nested":{"type":"string","pattern":"^((ab|c){2,3}-)+x?$"},
		"boundary":{"type":"string","pattern":"\\bword\\b","maxLength":20}}}`},
	{"recursive $ref", `{"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},
		"kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["v"]}},"$ref":"#/$defs/node"}`},
	{"mutually recursive", `{"definitions":{"a":{"type":"object","properties":{"b":{"$ref":"#/definitions/b"}}},
		"b":{"type":"array","items":{"$ref":"#/definitions/a"},"maxItems":2}},"$ref":"#/definitions/a"}`},
	{"ref to the root", `{"type":"object","properties":{"name":{"type":"string"},"next":{"$ref":"#"}},"required":["name"]}`},
	{"refs shared, not recursive", `{"$defs":{"t":{"type":"number","minimum":-40,"maximum":125},"id":{"type":"integer","minimum":1}},
		"type":"object","properties":{"in":{"$ref":"#/$defs/t"},"out":{"$ref":"#/$defs/t"},"id":{"$ref":"#/$defs/id"}},"required":["in","out"]}`},
	{"escaped ref", `{"$defs":{"a/b c":{"type":"null"}},"$ref":"#/$defs/a~1b%20c"}`},
}

func TestCompileAccepts(t *testing.T) {
	for _, tc := range goodSchemas {
		t.Run(tc.name, func(t *testing.T) {
			mustCompile(t, Options{}, tc.schema)
		})
	}
}

func TestCompileRejects(t *testing.T) {
	tests := []struct {
		name, schema string
		opts         Options
		sentinel     error
		want         []string // the errors, in order
	}{
		{"not JSON", `{"type":`, Options{}, ErrInvalidSchema, []string{"schema (root): not valid JSON: unexpected EOF"}},
		{"not an object", `[]`, Options{}, ErrInvalidSchema, []string{"schema (root): a schema must be an object or a boolean, not array"}},
		{"false", `false`, Options{}, ErrUnsupported, []string{"schema (root): the schema false is only supported as additionalProperties"}},
		{"unsupported keyword", `{"properties":{"temp":{"oneOf":[{"type":"number"}]}}}`, Options{}, ErrUnsupported,
			[]string{`schema /properties/temp: keyword "oneOf" is not supported`}},
		{"unknown type", `{"type":"float"}`, Options{}, ErrInvalidSchema, []string{`schema (root): unknown type "float"`}},
		{"type listed twice", `{"type":["string","string"]}`, Options{}, ErrInvalidSchema, []string{`schema (root): type "string" is listed twice`}},
		{"type of the wrong kind", `{"type":1}`, Options{}, ErrInvalidSchema,
			[]string{`schema (root): keyword "type" must be a string or an array of strings, not integer`}},
		{"duplicate keyword", `{"type":"string","type":"null"}`, Options{}, ErrInvalidSchema, []string{`schema (root): keyword "type" appears more than once`}},
		{"ref to nothing", `{"$defs":{"a":{}},"$ref":"#/$defs/b"}`, Options{}, ErrInvalidSchema, []string{`schema (root): $ref "#/$defs/b" names no definition`}},
		{"ref elsewhere", `{"properties":{"a":{"$ref":"other.json#/a"}}}`, Options{}, ErrUnsupported,
			[]string{`schema /properties/a: $ref "other.json#/a" is not supported: only "#", "#/$defs/NAME" and "#/definitions/NAME" are`}},
		{"ref into a definition", `{"$defs":{"a":{"properties":{"b":{}}}},"$ref":"#/$defs/a/properties/b"}`, Options{}, ErrUnsupported,
			[]string{`schema (root): $ref "#/$defs/a/properties/b" is not supported: only "#", "#/$defs/NAME" and "#/definitions/NAME" are`}},
		{"ref with siblings", `{"$defs":{"a":{}},"$ref":"#/$defs/a","type":"string","title":"ok"}`, Options{}, ErrUnsupported,
			[]string{`schema (root): keyword "type" next to "$ref" is not supported; move it into the definition`}},
		{"ref cycle", `{"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"$ref":"#/$defs/a"}},"type":"object"}`, Options{}, ErrInvalidSchema, []string{
			`schema /$defs/a: $ref cycle with no schema in between: #/$defs/b → #/$defs/a`,
			`schema /$defs/b: $ref cycle with no schema in between: #/$defs/a → #/$defs/b`,
		}},
		{"defs below the root", `{"properties":{"a":{"$defs":{}}}}`, Options{}, ErrUnsupported,
			[]string{`schema /properties/a: keyword "$defs" is only supported in the root schema`}},
		{"required undeclared, additionalProperties false", `{"type":"object","properties":{"a":{}},"required":["a","b"],"additionalProperties":false}`,
			Options{}, ErrInvalidSchema, []string{`schema (root): required property "b" is not in properties, and additionalProperties is false`}},
		{"required undeclared", `{"properties":{"a":{}},"required":["b"]}`, Options{}, ErrUnsupported,
			[]string{`schema (root): required property "b" is not in properties; the grammar only writes declared properties`}},
		{"required twice", `{"properties":{"a":{}},"required":["a","a"]}`, Options{}, ErrInvalidSchema, []string{`schema (root): keyword "required" lists "a" twice`}},
		{"minItems above maxItems", `{"type":"array","minItems":3,"maxItems":2}`, Options{}, ErrInvalidSchema, []string{"schema (root): minItems 3 is more than maxItems 2"}},
		{"minLength above maxLength", `{"type":"string","minLength":3,"maxLength":2}`, Options{}, ErrInvalidSchema, []string{"schema (root): minLength 3 is more than maxLength 2"}},
		{"negative count", `{"maxLength":-1}`, Options{}, ErrInvalidSchema, []string{`schema (root): keyword "maxLength" must be a non-negative integer, not -1`}},
		{"fractional count", `{"minItems":1.5}`, Options{}, ErrInvalidSchema, []string{`schema (root): keyword "minItems" must be a non-negative integer, not 1.5`}},
		{"empty range", `{"type":"number","exclusiveMinimum":5,"maximum":5}`, Options{}, ErrInvalidSchema,
			[]string{"schema (root): no number is within the lower bound 5 and the upper bound 5"}},
		{"no integer in range", `{"type":"integer","minimum":1.2,"maximum":1.8}`, Options{}, ErrInvalidSchema, []string{"schema (root): no integer lies within the bounds"}},
		{"bound beyond the digits", `{"type":"integer","minimum":1e20}`, Options{}, ErrUnsupported,
			[]string{"schema (root): the lower bound 1e20 is beyond the grammar's 16-digit numbers"}},
		{"draft 4 exclusiveMaximum", `{"maximum":5,"exclusiveMaximum":true}`, Options{}, ErrUnsupported,
			[]string{`schema (root): keyword "exclusiveMaximum" as a boolean (draft 4) is not supported; give the bound itself`}},
		{"tuple items", `{"items":[{}]}`, Options{}, ErrUnsupported, []string{`schema (root): keyword "items" with an array (tuple validation) is not supported`}},
		{"bad pattern", `{"pattern":"^(?=a)"}`, Options{}, ErrInvalidSchema,
			[]string{"schema (root): pattern \"^(?=a)\" is not a Go (RE2) regular expression: error parsing regexp: invalid or unsupported Perl syntax: `(?=`"}},
		{"empty enum", `{"enum":[]}`, Options{}, ErrInvalidSchema, []string{`schema (root): keyword "enum" must be a non-empty array`}},
		{"no enum value fits", `{"type":"string","enum":[1,2]}`, Options{}, ErrInvalidSchema, []string{"schema (root): no value of enum satisfies the schema's other keywords"}},
		{"const that does not fit", `{"type":"integer","const":1.5}`, Options{}, ErrInvalidSchema, []string{"schema (root): no value of const satisfies the schema's other keywords"}},
		{"minLength above the cap", `{"type":"string","minLength":20}`, Options{MaxStringLength: 10}, ErrUnsupported,
			[]string{"schema (root): minLength 20 is more than the grammar's cap of 10 characters (Options.MaxStringLength)"}},
		{"minItems above the cap", `{"type":"array","minItems":20}`, Options{MaxItems: 10}, ErrUnsupported,
			[]string{"schema (root): minItems 20 is more than the grammar's cap of 10 items (Options.MaxItems)"}},
		{"recursion without end", `{"$defs":{"n":{"type":"object","properties":{"next":{"$ref":"#/$defs/n"}},"required":["next"]}},"$ref":"#/$defs/n"}`,
			Options{}, ErrUnsupported, []string{"schema (root): every document nests recursive $refs more than 5 deep (Options.MaxDepth)"}},
		{"unsupported keyword in a definition", `{"$defs":{"n":{"type":"array","minItems":1,"items":{"anyOf":[]}}},"$ref":"#/$defs/n"}`,
			Options{}, ErrUnsupported, []string{`schema /$defs/n/items: keyword "anyOf" is not supported`}},
		{"option out of range", `{}`, Options{MaxStringLength: 2000}, ErrUnsupported,
			[]string{"option MaxStringLength 2000 is outside 1 to 1999: not supported"}},
		{"every problem at once", `{"type":"object","properties":{"a":{"type":"str"},"b":{"if":{}},"c":{"minLength":"1"}},"nullable":true}`,
			Options{}, nil, []string{
				`schema /properties/a: unknown type "str"`,
				`schema /properties/b: keyword "if" is not supported`,
				`schema /properties/c: keyword "minLength" must be a non-negative integer, not "1"`,
				`schema (root): keyword "nullable" is not supported`,
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.opts.Compile([]byte(tc.schema))
			if err == nil {
				t.Fatalf("compiled, grammar:\n%s", s.Grammar())
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Errorf("error does not wrap %v", tc.sentinel)
			}
			if got, want := err.Error(), strings.Join(tc.want, "\n"); got != want {
				t.Fatalf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestSchemaErrorsNameThePointer(t *testing.T) {
	_, err := Compile([]byte(`{"properties":{"a/b":{"items":{"uniqueItems":true}}}}`))
	var se *SchemaError
	if !errors.As(err, &se) || se.Pointer != "/properties/a~1b/items" || !errors.Is(se, ErrUnsupported) {
		t.Fatalf("got %#v", err)
	}
}
