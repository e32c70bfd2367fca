package fleet

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseManifestYAML(t *testing.T) {
	m, err := ParseManifestYAML([]byte(`
fleet: line3
devices: [gw-07, gw-08]
not_before: 2026-03-01T00:00:00Z
not_after: "2026-04-01T00:00:00+02:00"
min_version: 2
version: 4
artifacts:
  - kind: model
    name: qwen
    url: https://h/q.gguf
    sha256: "` + strings.Repeat("ab", 32) + `"
    size: 1000
    license: apache-2.0
    requires: {min_memory: 1.5GiB, arch: [arm64]}
checks:
  - prompt: hi
    max_tokens: 8
    contains: hello
    max_first_token_latency: 250ms
    json_schema: {type: object, properties: {n: {type: integer, minimum: 1}}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if m.Fleet != "line3" || len(m.Devices) != 2 || m.MinVersion != 2 ||
		!m.NotBefore.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) || !m.NotAfter.Equal(time.Date(2026, 3, 31, 22, 0, 0, 0, time.UTC)) {
		t.Errorf("scope = %q %v %v %v %d", m.Fleet, m.Devices, m.NotBefore, m.NotAfter, m.MinVersion)
	}
	a := m.Artifacts[0]
	if a.Requires.MinMemory != Bytes(1.5*(1<<30)) || a.Requires.Arch[0] != "arm64" {
		t.Errorf("requires = %+v", a.Requires)
	}
	c := m.Checks[0]
	if len(c.Contains) != 1 || c.Contains[0] != "hello" || c.MaxFirstTokenLatency.D() != 250*time.Millisecond {
		t.Errorf("check = %+v", c)
	}
	if string(c.JSONSchema) != `{"properties":{"n":{"minimum":1,"type":"integer"}},"type":"object"}` {
		t.Errorf("json_schema = %s", c.JSONSchema)
	}
}

// yamlScope is the scope every YAML test manifest carries.
const yamlScope = "fleet: line3\nnot_after: 2100-01-01T00:00:00Z\n"

func TestParseManifestYAMLErrorsHaveLines(t *testing.T) {
	doc := `version: 2
artifacts:
  - kind: model
    name: qwen
    url: ftp://h/q.gguf
    sha256: nothex
    size: 0
    licence: mit
  - kind: model
    name: qwen
    url: https://h/q
    sha256: "` + strings.Repeat("a", 64) + `"
    size: 12
    license: mit
    requires: {min_memory: lots}
checks:
  - prompt: hi
    max_tokens: many
` + yamlScope
	_, err := ParseManifestYAML([]byte(doc))
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{
		`line 8: unknown key "artifacts[0].licence"`,
		`line 15: artifacts[1].requires.min_memory: want a size`,
		`line 18: checks[0].max_tokens: want an integer`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	// Decoding problems come first; with those fixed, the rules.
	doc = strings.Replace(doc, "licence", "license", 1)
	doc = strings.Replace(doc, "{min_memory: lots}", "{min_memory: 1GiB}", 1)
	doc = strings.Replace(doc, "max_tokens: many", "max_tokens: 5", 1)
	_, err = ParseManifestYAML([]byte(doc))
	for _, want := range []string{
		`line 5: artifacts[0].url: scheme "ftp"`,
		`line 6: artifacts[0].sha256: want 64 lower-case hex digits`,
		`line 7: artifacts[0].size: want a size in bytes > 0`,
		`line 10: artifacts[1].name: duplicate name "qwen"`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestParseManifestYAMLRefuses(t *testing.T) {
	for name, doc := range map[string]string{
		"not yaml":       "version: [",
		"empty":          "",
		"duplicate key":  "version: 1\nversion: 2\nartifacts: []\n",
		"list at top":    "- 1\n",
		"number as name": "version: 1\nartifacts:\n  - {kind: model, name: 42, url: 'https://h/q', sha256: '" + strings.Repeat("a", 64) + "', size: 1, license: mit}\n",
	} {
		if _, err := ParseManifestYAML([]byte(doc)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

// TestMinMemory: min_memory reads the spellings bytesize.Parse does (its
// own tests hold the full table), up to JSON's largest safe integer.
func TestMinMemory(t *testing.T) {
	doc := func(v string) []byte {
		return []byte(yamlScope + "version: 1\nartifacts:\n  - {kind: model, name: q, url: 'https://h/q', sha256: '" + strings.Repeat("a", 64) +
			"', size: 1, license: mit, requires: {min_memory: " + v + "}}\n")
	}
	for in, want := range map[string]Bytes{"512MiB": 512 << 20, "2GB": 2e9, "64k": 64 << 10, "100": 100, "1.5 g": 3 << 29, "9007199254740991": maxSafeInteger} {
		m, err := ParseManifestYAML(doc(in))
		if err != nil || m.Artifacts[0].Requires.MinMemory != want {
			t.Errorf("min_memory: %s: %v; want %d", in, err, want)
			continue
		}
	}
	for in, says := range map[string]string{
		"lots": "want a size", "-1MiB": "negative", "1e30": "too large", "12XB": `unknown unit "XB"`,
		"9007199254740992": "more than 2^53-1 bytes", "9000TiB": "more than 2^53-1 bytes",
	} {
		_, err := ParseManifestYAML(doc(in))
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "min_memory") || !strings.Contains(err.Error(), says) {
			t.Errorf("min_memory: %s: error %v; want ErrMalformed saying %q", in, err, says)
		}
	}
}

type fakeSchema struct{ want string }

func (f fakeSchema) Validate(data []byte) error {
	if !strings.Contains(string(data), f.want) {
		return errors.New("missing " + f.want)
	}
	return nil
}

func TestEvaluateCheck(t *testing.T) {
	compile := func(schema []byte) (SchemaValidator, error) { return fakeSchema{`"status"`}, nil }
	c := Check{Prompt: "p", MaxTokens: 5, Contains: Strings{"pump"}, NotContains: Strings{"<|im_end|>"},
		MinTokensPerSecond: 10, MaxFirstTokenLatency: Duration(time.Second)}
	good := CheckResult{Output: "check the pump", TokensPerSecond: 12, FirstTokenLatency: 300 * time.Millisecond}
	if err := evaluateCheck(c, good, nil); err != nil {
		t.Fatalf("good result failed: %v", err)
	}
	cases := map[string]struct {
		res  CheckResult
		want string
	}{
		"missing text":   {CheckResult{Output: "check the valve", TokensPerSecond: 12}, `does not contain "pump"`},
		"forbidden text": {CheckResult{Output: "pump<|im_end|>", TokensPerSecond: 12}, `contains "<|im_end|>"`},
		"too slow":       {CheckResult{Output: "pump", TokensPerSecond: 3}, `3.0 tokens/s`},
		"late":           {CheckResult{Output: "pump", TokensPerSecond: 12, FirstTokenLatency: 2 * time.Second}, `first token after 2s`},
	}
	for name, tc := range cases {
		err := evaluateCheck(c, tc.res, nil)
		if !errors.Is(err, ErrCheckFailed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	js := Check{Prompt: "p", MaxTokens: 5, JSONSchema: RawJSON(`{"type":"object"}`)}
	for out, ok := range map[string]bool{
		`{"status":"ok"}`:                   true,
		"```json\n{\"status\":\"ok\"}\n```": true,
		` {"other":1} `:                     false,
		`status: ok`:                        false,
	} {
		err := evaluateCheck(js, CheckResult{Output: out}, compile)
		if (err == nil) != ok {
			t.Errorf("json_schema on %q: %v", out, err)
		}
	}
	if err := evaluateCheck(js, CheckResult{Output: "{}"}, nil); !errors.Is(err, ErrCheckFailed) {
		t.Errorf("json_schema without a validator: %v", err)
	}
}
