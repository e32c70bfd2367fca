package jsonschema

import (
	"errors"
	"strings"
	"testing"
)

// alarmSchema is the PLC alarm every part of the tests uses.
const alarmSchema = `{"type":"object","properties":{
	"severity":{"enum":["low","medium","high"]},
	"action":{"type":"string","maxLength":40},
	"shutdown":{"type":"boolean"},
	"temperature":{"type":"number","minimum":-50,"maximum":500}},
	"required":["severity","action","shutdown"]}`

func TestValidate(t *testing.T) {
	const strict = `{"type":"object","properties":{"a":{"type":"integer"}},"additionalProperties":false}`
	const nested = `{"type":"object","properties":{"lines":{"type":"array","minItems":1,"maxItems":2,
		"items":{"type":"object","properties":{"id":{"type":"integer","exclusiveMinimum":0},"tag":{"type":"string","pattern":"^[A-Z]{2}[0-9]{3}$"}},
		"required":["id"]}}},"required":["lines"]}`
	const refs = `{"$defs":{"t":{"type":"number","exclusiveMaximum":100}},"definitions":{"n":{"type":["string","null"],"minLength":2}},
		"type":"object","properties":{"t":{"$ref":"#/$defs/t"},"n":{"$ref":"#/definitions/n"},"self":{"$ref":"#"}}}`
	tests := []struct {
		name, schema, doc string
		want              []string // the violations, in order; nil for a valid document
	}{
		{"valid alarm", alarmSchema, `{"severity":"high","action":"stop pump 3","shutdown":true,"temperature":480.5}`, nil},
		{"valid alarm, optional member left out", alarmSchema, `{"severity":"low","action":"","shutdown":false}`, nil},
		{"valid alarm with whitespace and an exponent", alarmSchema, " {\"severity\" : \"low\",\n\"action\":\"x\",\"shutdown\":false,\"temperature\":5e2}\n", nil},
		{"maximum", alarmSchema, `{"severity":"high","action":"a","shutdown":true,"temperature":812}`,
			[]string{"/temperature: 812 is more than the maximum 500"}},
		{"maximum compared exactly", alarmSchema, `{"severity":"high","action":"a","shutdown":true,"temperature":500.000000000000000000001}`,
			[]string{"/temperature: 500.000000000000000000001 is more than the maximum 500"}},
		{"minimum", alarmSchema, `{"severity":"high","action":"a","shutdown":true,"temperature":-50.5}`,
			[]string{"/temperature: -50.5 is less than the minimum -50"}},
		{"every violation at once", alarmSchema, `{"severity":"urgent","action":7,"temperature":"hot"}`, []string{
			`(root): required property "shutdown" is missing`,
			`/severity: "urgent" is not one of "low", "medium", "high"`,
			`/action: expected string, got integer 7`,
			`/temperature: expected number, got string "hot"`,
		}},
		{"maxLength counts characters", alarmSchema, `{"severity":"low","action":"` + strings.Repeat("é", 41) + `","shutdown":true}`,
			[]string{`/action: "` + strings.Repeat("é", 41) + `" is 41 characters, more than maxLength 40`}},
		{"maxLength of 40 characters in 80 bytes", alarmSchema, `{"severity":"low","action":"` + strings.Repeat("é", 40) + `","shutdown":true}`, nil},
		{"not an object", alarmSchema, `[1,2]`, []string{"(root): expected object, got array"}},
		{"not JSON", alarmSchema, `{"severity":"low",`, []string{"(root): not valid JSON: unexpected EOF"}},
		{"trailing data", alarmSchema, `{"severity":"low","action":"","shutdown":true} {}`,
			[]string{"(root): not valid JSON: data after the JSON value, which ends at byte 46"}},
		{"invalid UTF-8", alarmSchema, "{\"severity\":\"low\",\"action\":\"\xff\",\"shutdown\":true}", []string{"(root): not valid JSON: not valid UTF-8"}},
		{"duplicate member", alarmSchema, `{"severity":"low","action":"","shutdown":true,"shutdown":false}`,
			[]string{`/shutdown: property "shutdown" appears more than once`}},
		{"additionalProperties false", strict, `{"a":1,"b/c":2}`, []string{`/b~1c: property "b/c" is not allowed (additionalProperties is false)`}},
		{"additional properties allowed by default", alarmSchema, `{"severity":"low","action":"","shutdown":true,"extra":1}`, nil},
		{"integer written with a zero fraction", strict, `{"a":1.0}`, nil},
		{"integer written with an exponent", strict, `{"a":12e3}`, nil},
		{"integer with a fraction", strict, `{"a":1.5}`, []string{"/a: expected integer, got number 1.5"}},
		{"nested pointers", nested, `{"lines":[{"id":1,"tag":"AB123"},{"id":0,"tag":"ab123"},{}]}`, []string{
			"/lines: 3 items are more than maxItems 2",
			"/lines/1/id: 0 is not more than the exclusive minimum 0",
			`/lines/1/tag: "ab123" does not match the pattern "^[A-Z]{2}[0-9]{3}$"`,
			`/lines/2: required property "id" is missing`,
		}},
		{"minItems", nested, `{"lines":[]}`, []string{"/lines: 0 items are fewer than minItems 1"}},
		{"refs", refs, `{"t":100,"n":"x","self":{"t":99.9,"n":null,"self":{"n":1}}}`, []string{
			"/t: 100 is not less than the exclusive maximum 100",
			`/n: "x" is 1 characters, fewer than minLength 2`,
			"/self/self/n: expected string or null, got integer 1",
		}},
		{"const", `{"const":{"mode":"auto","limits":[1,2.0]}}`, `{"limits":[1.0,2],"mode":"auto"}`, nil},
		{"const violated", `{"const":{"mode":"auto"}}`, `{"mode":"manual"}`, []string{`(root): {"mode":"manual"} is not the required value {"mode":"auto"}`}},
		{"enum of mixed values", `{"enum":[null,1,"1",[1]]}`, `1.00`, nil},
		{"enum violated", `{"enum":[null,1,"1",[1]]}`, `true`, []string{`(root): true is not one of null, 1, "1", [1]`}},
		{"boolean schema true", `{"properties":{"any":true}}`, `{"any":[{"x":null}]}`, nil},
		{"type list", `{"type":["integer","boolean"]}`, `"x"`, []string{`(root): expected integer or boolean, got string "x"`}},
		{"keywords of other types do not apply", `{"type":["string","number"],"minLength":3,"minimum":10}`, `"abc"`, nil},
		{"additionalProperties schema", `{"properties":{"a":{}},"additionalProperties":{"type":"integer"}}`, `{"a":"x","b":"y"}`,
			[]string{`/b: expected integer, got string "y"`}},
		{"key needing escapes in the pointer", `{"properties":{"a~b":{"type":"null"}}}`, `{"a~b":0}`, []string{"/a~0b: expected null, got integer 0"}},
		{"huge exponent", `{"maximum":1e400}`, `1e999999999999`, []string{"(root): 1e999999999999 is more than the maximum 1e400"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := mustCompile(t, Options{}, tc.schema)
			err := s.Validate([]byte(tc.doc))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("valid document rejected: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			if got, want := err.Error(), strings.Join(tc.want, "\n"); got != want {
				t.Fatalf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestValidateReportsAtMost50Violations(t *testing.T) {
	s, _ := mustCompile(t, Options{}, `{"type":"array","items":{"type":"string"}}`)
	doc := "[" + strings.TrimSuffix(strings.Repeat("1,", 80), ",") + "]"
	err := s.Validate([]byte(doc))
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) {
		t.Fatalf("want joined errors, got %v", err)
	}
	errs := joined.Unwrap()
	if len(errs) != 51 || errs[50].Error() != "(root): 30 more violations not listed" {
		t.Fatalf("%d errors, last %v", len(errs), errs[len(errs)-1])
	}
	var ve *ValidationError
	if !errors.As(errs[3], &ve) || ve.Pointer != "/3" {
		t.Fatalf("error 3 is %#v", errs[3])
	}
}
