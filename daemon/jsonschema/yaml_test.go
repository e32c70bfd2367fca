package jsonschema

import (
	"errors"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestFromYAML(t *testing.T) {
	tests := []struct {
		name, yaml, want, err string
	}{
		{"alarm keeps key order", `
type: object
properties:
  severity: {enum: [low, medium, high]}
  action: {type: string, maxLength: 40}
  shutdown: {type: boolean}
required: [severity, action, shutdown]
`, `{"type":"object","properties":{"severity":{"enum":["low","medium","high"]},"action":{"type":"string","maxLength":40},"shutdown":{"type":"boolean"}},"required":["severity","action","shutdown"]}`, ""},
		{"numbers", "a: 0x1F\nb: 0o17\nc: -7\nd: 0.1\ne: 1e3\nf: +12\ng: 1.5E+3\nh: 18446744073709551615\ni: 1_000",
			`{"a":31,"b":15,"c":-7,"d":0.1,"e":1e3,"f":12,"g":1.5E+3,"h":18446744073709551615,"i":1000}`, ""},
		{"scalars", "a: yes\nb: true\nc: ~\nd: 2024-01-01\ne: '1'\nf: \"x\\ty\"", `{"a":"yes","b":true,"c":null,"d":"2024-01-01","e":"1","f":"x\ty"}`, ""},
		{"anchors", "d: &t {type: integer}\nproperties: {a: *t, b: *t}", `{"d":{"type":"integer"},"properties":{"a":{"type":"integer"},"b":{"type":"integer"}}}`, ""},
		{"infinity", "maximum: .inf", "", "yaml line 1: .inf is not a JSON number: invalid schema"},
		{"merge key", "a: &x {b: 1}\nc:\n  <<: *x", "", "yaml line 3: merge keys (<<) are not supported: invalid schema"},
		{"key not a string", "1: a", "", `yaml line 1: key "1" is not a string; quote it: invalid schema`},
		{"binary", "a: !!binary aGk=", "", "yaml line 1: values tagged !!binary are not supported: invalid schema"},
		{"recursive alias", "a: &x [1, *x]", "", "yaml line 1: nested more than 256 deep: invalid schema"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var n yaml.Node
			if err := yaml.Unmarshal([]byte(tc.yaml), &n); err != nil {
				t.Fatal(err)
			}
			got, err := FromYAML(&n)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err || !errors.Is(err, ErrInvalidSchema) {
					t.Fatalf("error %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestYAMLSchemaCompiles(t *testing.T) {
	var cfg struct {
		Output struct {
			Format string    `yaml:"format"`
			Schema yaml.Node `yaml:"schema"`
		} `yaml:"output"`
	}
	src := `
output:
  format: json
  schema:
    type: object
    properties:
      shutdown: {type: boolean}
      severity: {enum: [low, high]}
    required: [shutdown, severity]
`
	if err := yaml.Unmarshal([]byte(src), &cfg); err != nil {
		t.Fatal(err)
	}
	b, err := FromYAML(&cfg.Output.Schema)
	if err != nil {
		t.Fatal(err)
	}
	s, g := mustCompile(t, Options{}, string(b))
	if !g.match(`{"shutdown":true,"severity":"low"}`) || g.match(`{"severity":"low","shutdown":true}`) {
		t.Fatalf("the grammar does not follow the YAML's order:\n%s", s.Grammar())
	}
}
