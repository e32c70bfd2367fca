package redact

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func mustNew(t *testing.T, rules ...Rule) *Redactor {
	t.Helper()
	r, err := New(rules)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRedact(t *testing.T) {
	cases := []struct {
		name  string
		rules []Rule
		in    string
		want  string
	}{
		{"no rules compacts", nil, `{ "a" : [1, 2 ,3], "b":"x y" }`, `{"a":[1,2,3],"b":"x y"}`},
		{"pattern in string values",
			[]Rule{{Pattern: `secret-\d+`}},
			`{"note":"the code is secret-42 and secret-7","n":42}`,
			`{"note":"the code is [REDACTED] and [REDACTED]","n":42}`},
		{"pattern leaves keys alone",
			[]Rule{{Pattern: `token`}},
			`{"token":"a token here"}`,
			`{"token":"a [REDACTED] here"}`},
		{"pattern with custom replacement",
			[]Rule{{Pattern: `[A-Z]{3}`, Replace: "***"}},
			`["ABC def","GHIJ"]`,
			`["*** def","***J"]`},
		{"pattern in nested arrays and objects",
			[]Rule{{Pattern: `pw=\S+`}},
			`{"a":{"b":[{"c":"pw=hunter2 ok"}],"d":"pw=x"}}`,
			`{"a":{"b":[{"c":"[REDACTED] ok"}],"d":"[REDACTED]"}}`},
		{"pattern does not touch numbers, booleans, null",
			[]Rule{{Pattern: `1`}},
			`{"a":1,"b":true,"c":null,"d":"1"}`,
			`{"a":1,"b":true,"c":null,"d":"[REDACTED]"}`},
		{"field replaces a string whole",
			[]Rule{{Field: "input.operator"}},
			`{"input":{"operator":"Jane Doe","line":3},"operator":"keep"}`,
			`{"input":{"operator":"[REDACTED]","line":3},"operator":"keep"}`},
		{"field replaces an object whole",
			[]Rule{{Field: "input"}},
			`{"input":{"operator":"Jane","nested":[1,{"x":"}"}]},"z":1}`,
			`{"input":"[REDACTED]","z":1}`},
		{"field replaces a number",
			[]Rule{{Field: "output.readings[0].serial", Replace: "x"}},
			`{"output":{"readings":[{"serial":12345,"v":1},{"serial":678,"v":2}]}}`,
			`{"output":{"readings":[{"serial":"x","v":1},{"serial":678,"v":2}]}}`},
		{"field with any index",
			[]Rule{{Field: "output.readings[*].serial"}},
			`{"output":{"readings":[{"serial":"A"},{"serial":"B"},{"other":"C"}]}}`,
			`{"output":{"readings":[{"serial":"[REDACTED]"},{"serial":"[REDACTED]"},{"other":"C"}]}}`},
		{"field with any key",
			[]Rule{{Field: "*.password"}},
			`{"db":{"password":"p1"},"mqtt":{"password":"p2"},"password":"top"}`,
			`{"db":{"password":"[REDACTED]"},"mqtt":{"password":"[REDACTED]"},"password":"top"}`},
		{"field path into a missing key changes nothing",
			[]Rule{{Field: "input.operator"}},
			`{"input":"not an object","other":{"operator":"x"}}`,
			`{"input":"not an object","other":{"operator":"x"}}`},
		{"field matches an escaped key",
			[]Rule{{Field: "in\"put"}},
			`{"in\"put":"x","input":"y"}`,
			`{"in\"put":"[REDACTED]","input":"y"}`},
		{"index into nested arrays",
			[]Rule{{Field: "m[1][0]"}},
			`{"m":[[1,2],[3,4]]}`,
			`{"m":[[1,2],["[REDACTED]",4]]}`},
		{"field and pattern together",
			[]Rule{{Field: "input.operator"}, {Builtin: "email"}},
			`{"input":{"operator":"jane@example.com"},"note":"mail bob@example.org"}`,
			`{"input":{"operator":"[REDACTED]"},"note":"mail [REDACTED]"}`},
		{"escapes in a rewritten string are re-escaped",
			[]Rule{{Pattern: `x`}},
			`{"a":"x\"\n\u00e9<>&\u2028"}`,
			"{\"a\":\"[REDACTED]\\\"\\n\u00e9<>&\\u2028\"}"},
		{"escapes in an untouched string stay byte for byte",
			[]Rule{{Pattern: `nomatch`}},
			`{"a":"\u0041\/b"}`,
			`{"a":"\u0041\/b"}`},
		{"pattern matching an escaped character",
			[]Rule{{Pattern: `A/B`}},
			`{"a":"\u0041\/B!"}`,
			`{"a":"[REDACTED]!"}`},
		{"top-level string", []Rule{{Builtin: "ipv4"}}, `"from 10.1.2.3"`, `"from [REDACTED]"`},
		{"top-level scalar", []Rule{{Field: "a"}}, ` 42 `, `42`},
		{"empty containers", []Rule{{Field: "a"}}, `{"a":{},"b":[],"c":{}}`, `{"a":"[REDACTED]","b":[],"c":{}}`},
		{"not JSON becomes a redacted string",
			[]Rule{{Builtin: "email"}}, `oops jane@example.com {`, `"oops [REDACTED] {"`},
		{"not JSON with a field rule is replaced whole",
			[]Rule{{Field: "a"}, {Builtin: "email"}}, `{"a":`, `"[REDACTED]"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := mustNew(t, c.rules...)
			in := []byte(c.in)
			got := r.Redact(in)
			if string(got) != c.want {
				t.Errorf("Redact(%s)\n got %s\nwant %s", c.in, got, c.want)
			}
			if !json.Valid(got) {
				t.Errorf("output is not valid JSON: %s", got)
			}
			if string(in) != c.in {
				t.Errorf("input was modified: %s", in)
			}
		})
	}
}

// A replacement can leave a value standing alone that was glued to what
// it replaced; rules run again until nothing more matches, so that value
// does not leave either, and redacting the output changes nothing.
func TestRedactionExposingAValueRedactsItToo(t *testing.T) {
	r, err := New([]Rule{{Builtin: "phone"}, {Builtin: "serial"}})
	if err != nil {
		t.Fatal(err)
	}
	out := r.Redact([]byte(`"0000A00A+0000000"`))
	if want := `"[REDACTED][REDACTED]"`; string(out) != want {
		t.Fatalf("got %s, want %s", out, want)
	}
	if again := r.Redact(out); string(again) != string(out) {
		t.Fatalf("a second pass changed %s to %s", out, again)
	}
}

func TestNewRefusesBadRules(t *testing.T) {
	cases := []struct {
		name string
		rule Rule
		want string
	}{
		{"none set", Rule{}, "exactly one"},
		{"two set", Rule{Pattern: "a", Field: "b"}, "exactly one"},
		{"bad regexp", Rule{Pattern: "("}, "pattern"},
		{"unknown builtin", Rule{Builtin: "ssn"}, "not one of email, phone, ipv4, serial"},
		{"empty key", Rule{Field: "a..b"}, "empty key"},
		{"bad index", Rule{Field: "a[x]"}, "array index"},
		{"negative index", Rule{Field: "a[-1]"}, "array index"},
		{"unclosed", Rule{Field: "a[1"}, "unclosed"},
		{"junk after ]", Rule{Field: "a[1]b"}, "text after ]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New([]Rule{{Builtin: "email"}, c.rule})
			if !errors.Is(err, ErrBadRule) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "rule 1") {
				t.Errorf("New: %v, want ErrBadRule for rule 1 mentioning %q", err, c.want)
			}
		})
	}
	// Every problem is reported at once.
	_, err := New([]Rule{{}, {Pattern: "("}})
	if err == nil || !strings.Contains(err.Error(), "rule 0") || !strings.Contains(err.Error(), "rule 1") {
		t.Errorf("New with two bad rules: %v", err)
	}
}

func TestRedactIsSafeForConcurrentUse(t *testing.T) {
	r := mustNew(t, Rule{Field: "a.b"}, Rule{Builtin: "serial"})
	done := make(chan string)
	for range 4 {
		go func() {
			var got string
			for range 200 {
				got = string(r.Redact([]byte(`{"a":{"b":1,"c":"SN-2024-00123"}}`)))
			}
			done <- got
		}()
	}
	for range 4 {
		if got := <-done; got != `{"a":{"b":"[REDACTED]","c":"SN-[REDACTED]"}}` && got != `{"a":{"b":"[REDACTED]","c":"[REDACTED]"}}` {
			t.Errorf("got %s", got)
		}
	}
}
