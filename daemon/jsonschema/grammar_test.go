package jsonschema

import (
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden grammars in testdata")

func TestGrammarGolden(t *testing.T) {
	tests := []struct {
		file, schema string
		opts         Options
	}{
		{"alarm.gbnf", alarmSchema, Options{}},
		{"optional.gbnf", `{"type":"object","properties":{"a":{"type":"boolean"},"b":{"type":"null"},"c":{"type":"integer","minimum":1,"maximum":12},"d":{"type":"string"}},"required":["c"]}`, Options{}},
		{"array.gbnf", `{"type":"array","minItems":1,"maxItems":8,"items":{"type":"object","properties":{"tag":{"type":"string","pattern":"^[A-Z]{2}[0-9]{3}$"},"v":{"type":["number","null"],"exclusiveMinimum":-1,"maximum":1}},"required":["tag","v"]}}`, Options{}},
		{"recursive.gbnf", `{"$defs":{"node":{"type":"object","properties":{"name":{"type":"string","maxLength":8},"kids":{"type":"array","maxItems":3,"items":{"$ref":"#/$defs/node"}}},"required":["name"]}},"$ref":"#/$defs/node"}`, Options{MaxDepth: 2}},
		{"any.gbnf", `{}`, Options{MaxDepth: 1, MaxItems: 4, MaxStringLength: 16}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			s, _ := mustCompile(t, tc.opts, tc.schema)
			path := filepath.Join("testdata", tc.file)
			if *update {
				if err := os.WriteFile(path, []byte(s.Grammar()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run Golden -update to write it)", err)
			}
			if s.Grammar() != string(want) {
				t.Errorf("grammar changed; run with -update if that is intended. got:\n%s", s.Grammar())
			}
		})
	}
}

// TestGrammarMatches pins down what the grammar lets a model write.
func TestGrammarMatches(t *testing.T) {
	tests := []struct {
		name, schema string
		opts         Options
		match, not   []string
	}{
		{"alarm", alarmSchema, Options{}, []string{
			`{"severity":"low","action":"","shutdown":true}`,
			`{"severity":"high","action":"stop pump 3","shutdown":false,"temperature":-12.5}`,
			"{ \"severity\": \"medium\",\n\"action\": \"a\\\"b\\u00e9\\n\" ,\"shutdown\":true }",
			`{"severity":"low","action":"` + strings.Repeat("x", 40) + `","shutdown":true,"temperature":500}`,
			`{"severity":"low","action":"` + strings.Repeat("温", 40) + `","shutdown":true}`,
		}, []string{
			`{"severity":"low","action":""}`,                                // required member missing
			`{"action":"","severity":"low","shutdown":true}`,                // out of order
			`{"severity":"low","action":"","shutdown":true,"x":1}`,          // undeclared
			`{"severity":"urgent","action":"","shutdown":true}`,             // not in enum
			`{"severity":"low","action":"` + strings.Repeat("x", 41) + `"}`, // too long
			`{"severity":"low","action":"","shutdown":true,"temperature":501}`,
			`{"severity":"low","action":"","shutdown":true,"temperature":5e2}`, // exponent
			`{"severity":"low","action":"","shutdown":true,"temperature":07}`,  // leading zero
			`{"severity":"low","action":"","shutdown":true,"temperature":12345678901234567}`,
			`{"severity":"low",  "action":"","shutdown":true}`,           // two spaces
			`{"severity":"low","action":"","shutdown":true} `,            // trailing space
			` {"severity":"low","action":"","shutdown":true}`,            // leading space
			`{"severity":"low","action":"","shutdown":true,}`,            // trailing comma
			"{\"severity\":\"low\",\"action\":\"\t\",\"shutdown\":true}", // raw control
			`{"severity":"low","action":"\ud800","shutdown":true}`,       // surrogate escape
			`{"severity":"low","action":"\x","shutdown":true}`,           // bad escape
		}},
		{"optional only", `{"type":"object","properties":{"a":{"type":"null"},"b":{"type":"null"},"c":{"type":"null"}}}`, Options{},
			[]string{`{}`, `{ }`, `{"a":null}`, `{"b":null}`, `{"c":null}`, `{"a":null,"c":null}`, `{"a":null,"b":null,"c":null}`},
			[]string{`{"b":null,"a":null}`, `{,"a":null}`, `{"a":null,}`, `{"a":null,"a":null}`}},
		{"required in the middle", `{"type":"object","properties":{"a":{"type":"null"},"b":{"type":"null"},"c":{"type":"null"}},"required":["b"]}`, Options{},
			[]string{`{"b":null}`, `{"a":null,"b":null}`, `{"b":null,"c":null}`, `{"a":null,"b":null,"c":null}`},
			[]string{`{}`, `{"a":null}`, `{"a":null,"c":null}`}},
		{"array bounds", `{"type":"array","minItems":2,"maxItems":3,"items":{"type":"boolean"}}`, Options{},
			[]string{`[true,false]`, "[ true ,\nfalse, true ]"},
			[]string{`[]`, `[true]`, `[true,true,true,true]`, `[true,,true]`}},
		{"array capped", `{"type":"array","items":{"type":"null"}}`, Options{MaxItems: 2},
			[]string{`[]`, `[null]`, `[null,null]`}, []string{`[null,null,null]`}},
		{"string capped", `{"type":"string"}`, Options{MaxStringLength: 3},
			[]string{`""`, `"abc"`, `"\n\t\\"`, `"\u00e9\u20AC😀"`}, []string{`"abcd"`}},
		{"string lengths", `{"type":"string","minLength":2,"maxLength":3}`, Options{},
			[]string{`"ab"`, `"a\"c"`}, []string{`"a"`, `"abcd"`}},
		{"type list", `{"type":["integer","null","boolean"]}`, Options{},
			[]string{`-1`, `0`, `null`, `false`}, []string{`1.5`, `"1"`, `-0`}},
		{"enum values", `{"enum":["a\"b",{"k":[1,2]},null,1.50]}`, Options{},
			[]string{`"a\"b"`, `{"k":[1,2]}`, `null`, `1.50`}, []string{`{"k": [1,2]}`, `1.5`}},
		{"integer range", `{"type":"integer","minimum":-40,"maximum":125}`, Options{},
			[]string{`-40`, `-1`, `0`, `9`, `99`, `100`, `125`}, []string{`-41`, `126`, `-0`, `007`, `1.0`}},
		{"number range", `{"type":"number","minimum":0,"maximum":500}`, Options{},
			[]string{`0`, `0.5`, `499.999`, `500`, `500.000`}, []string{`-0.5`, `500.01`, `501`, `-1`}},
		{"unconstrained", `{}`, Options{MaxDepth: 1, MaxItems: 2},
			[]string{`null`, `{}`, `[]`, `[1,"a"]`, `-3.25`}, []string{`[[]]`, `{"a":1}`, `[1,2,3]`}},
		{"recursion bottoms out", `{"$defs":{"n":{"type":"array","maxItems":1,"items":{"$ref":"#/$defs/n"}}},"$ref":"#/$defs/n"}`, Options{MaxDepth: 2},
			[]string{`[]`, `[[]]`, `[[[]]]`}, []string{`[[[[]]]]`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, g := mustCompile(t, tc.opts, tc.schema)
			for _, doc := range tc.match {
				if !g.match(doc) {
					t.Errorf("grammar does not match %s", doc)
				}
				if len(doc) > s.MaxBytes() {
					t.Errorf("%s is longer than MaxBytes %d", doc, s.MaxBytes())
				}
			}
			for _, doc := range tc.not {
				if g.match(doc) {
					t.Errorf("grammar matches %s", doc)
				}
			}
		})
	}
}

// TestIntegerRangesAreExact checks every integer around many ranges.
func TestIntegerRangesAreExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	ranges := [][2]int64{{0, 0}, {0, 9}, {-9, 9}, {1, 1}, {-1, -1}, {7, 123}, {-123, -7}, {99, 101}, {999, 1001},
		{-1000, 1000}, {10, 99}, {100, 999}, {5, 5000}, {-5000, -5}, {1234, 5678}, {0, intLimit}, {-intLimit, intLimit},
		{9_999_999_999_999_990, intLimit}, {-intLimit, -9_999_999_999_999_990}}
	for range 40 {
		a, b := rng.Int64N(4000)-2000, rng.Int64N(4000)-2000
		ranges = append(ranges, [2]int64{min(a, b), max(a, b)})
	}
	for _, r := range ranges {
		lo, hi := r[0], r[1]
		g := checkGrammar(t, "root ::= "+intRange(lo, hi)+"\n")
		var probes []int64
		for _, edge := range []int64{lo, hi, 0, 10, 100, 1000, -10, -100, -1000} {
			for d := int64(-12); d <= 12; d++ {
				if v := edge + d; v >= -intLimit-1 && v <= intLimit+1 {
					probes = append(probes, v)
				}
			}
		}
		if hi-lo < 3000 {
			for v := lo - 3; v <= hi+3; v++ {
				probes = append(probes, v)
			}
		}
		for _, v := range probes {
			want := lo <= v && v <= hi
			if got := g.match(strconv.FormatInt(v, 10)); got != want {
				t.Fatalf("range [%d, %d]: %d matched %v\n%s", lo, hi, v, got, intRange(lo, hi))
			}
		}
		for _, s := range []string{"-0", "00", "01", "+1", ""} {
			if g.match(s) {
				t.Fatalf("range [%d, %d] matches %q", lo, hi, s)
			}
		}
	}
}

// TestNumberRangesAreExact checks numbers around integer bounds of every
// kind against the validator's exact comparison.
func TestNumberRangesAreExact(t *testing.T) {
	bounds := []string{
		`"minimum":0`, `"maximum":0`, `"exclusiveMinimum":0`, `"exclusiveMaximum":0`,
		`"minimum":0,"maximum":500`, `"exclusiveMinimum":-1,"exclusiveMaximum":1`, `"minimum":-20,"exclusiveMaximum":-10`,
		`"exclusiveMinimum":-20,"maximum":-10`, `"minimum":-5,"maximum":-5`, `"minimum":3,"exclusiveMaximum":4`,
		`"exclusiveMinimum":3,"maximum":4`, `"exclusiveMinimum":3,"exclusiveMaximum":4`, `"minimum":-1e30`,
	}
	var probes []string
	for _, i := range []int{0, 1, 3, 4, 5, 9, 10, 11, 19, 20, 21, 499, 500, 501} {
		for _, f := range []string{"", ".0", ".00", ".5", ".01", ".99", ".0000000000000001"} {
			probes = append(probes, fmt.Sprint(i)+f, fmt.Sprint(-i)+f)
		}
	}
	for _, b := range bounds {
		schema := `{"type":"number",` + b + `}`
		s, g := mustCompile(t, Options{}, schema)
		if len(s.Gaps()) > 0 {
			t.Fatalf("%s: integer bounds left gaps %v", schema, s.Gaps())
		}
		for _, p := range probes {
			if strings.HasPrefix(p, "-0") && strings.Trim(p, "-0.") == "" {
				continue // the grammar never writes -0; the validator allows it
			}
			if got, want := g.match(p), s.Validate([]byte(p)) == nil; got != want {
				t.Errorf("%s: grammar matches %s: %v, valid: %v", schema, p, got, want)
			}
		}
	}
}

func TestFractionalNumberBoundsAreGaps(t *testing.T) {
	s, g := mustCompile(t, Options{}, `{"type":"number","minimum":-0.5,"maximum":99.9}`)
	want := []string{
		"(root): the grammar rounds the lower bound -0.5 down to -1; Validate checks it",
		"(root): the grammar rounds the upper bound 99.9 up to 100; Validate checks it",
	}
	if fmt.Sprint(s.Gaps()) != fmt.Sprint(want) {
		t.Fatalf("gaps %q", s.Gaps())
	}
	if !g.match("99.95") || g.match("100.5") || !g.match("-0.75") || g.match("-1.5") {
		t.Fatal("the rounded range is not what the gaps say")
	}
}

func TestPatterns(t *testing.T) {
	tests := []struct {
		pattern string
		gap     bool
		match   []string // JSON strings
		not     []string
		cap     int // Options.MaxStringLength; 0 means 16
	}{
		{`^[A-Z]{2}[0-9]{3}$`, false, []string{`"AB123"`}, []string{`"AB12"`, `"ab123"`, `"AB1234"`, `" AB123"`}, 0},
		{`pump`, false, []string{`"pump"`, `"a pump 3"`}, []string{`"pum"`, `"PUMP"`}, 0},
		{`^ok`, false, []string{`"ok"`, `"okay"`}, []string{`"not ok"`}, 0},
		{`(?i)^ok$`, false, []string{`"ok"`, `"OK"`, `"oK"`}, []string{`"okk"`}, 0},
		{`^[^a]{2}$`, false, []string{`"bc"`, `"\"\\"`, `"\n\u0001"`, `"温😀"`}, []string{`"ab"`, `"b"`}, 0},
		{`^.$`, false, []string{`"x"`, `"\t"`}, []string{`"\n"`, `"xy"`}, 0},
		{`^(ab|c){2,3}-?$`, false, []string{`"abc"`, `"cab-"`, `"ccc"`}, []string{`"c"`, `"abababab"`, `"ab-c"`}, 0},
		{`^a+$`, false, []string{`"a"`, `"aaaa"`}, []string{`""`, `"` + strings.Repeat("a", 9) + `"`}, 8},
		{`^\d{3}$`, false, []string{`"123"`}, []string{`"12a"`}, 0},
		{`^a(b|)c$`, false, []string{`"ac"`, `"abc"`}, []string{`"abbc"`}, 0},
		{`^$`, false, []string{`""`}, []string{`"a"`}, 0},
		{`^[\x7f]\x7f$`, false, []string{`"\u007f\u007f"`}, []string{"\"\x7f\x7f\""}, 0},
		{`\bpump\b`, true, nil, nil, 0},
		{`(?m)^a$`, true, nil, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.pattern, func(t *testing.T) {
			schema := fmt.Sprintf(`{"type":"string","pattern":%s}`, quoteJSON(tc.pattern))
			s, g := mustCompile(t, Options{MaxStringLength: cmp.Or(tc.cap, 16)}, schema)
			if got := len(s.Gaps()) > 0; got != tc.gap {
				t.Fatalf("gaps %q", s.Gaps())
			}
			for _, doc := range tc.match {
				if !g.match(doc) {
					t.Errorf("grammar does not match %s", doc)
				}
				if err := s.Validate([]byte(doc)); err != nil {
					t.Errorf("test case is wrong: %v", err)
				}
			}
			for _, doc := range tc.not {
				if g.match(doc) {
					t.Errorf("grammar matches %s", doc)
				}
			}
		})
	}
}

// TestSampledDocumentsAreValid writes random documents with every good
// schema's grammar, as a model would, and checks them all.
func TestSampledDocumentsAreValid(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	opts := Options{MaxStringLength: 24, MaxItems: 4, MaxDepth: 3}
	for _, tc := range goodSchemas {
		t.Run(tc.name, func(t *testing.T) {
			s, g := mustCompile(t, opts, tc.schema)
			for range 60 {
				doc, ok := g.sample(rng, 1<<20)
				if !ok {
					t.Fatalf("sample outgrew 1 MiB (MaxBytes %d)", s.MaxBytes())
				}
				if len(doc) > s.MaxBytes() {
					t.Fatalf("%d bytes, more than MaxBytes %d: %s", len(doc), s.MaxBytes(), doc)
				}
				if !json.Valid([]byte(doc)) {
					t.Fatalf("not JSON: %q", doc)
				}
				if !g.match(doc) {
					t.Fatalf("the matcher disagrees with the sampler on %q", doc)
				}
				if err := s.Validate([]byte(doc)); err != nil && len(s.Gaps()) == 0 {
					t.Fatalf("%q: %v\n%s", doc, err, s.Grammar())
				}
			}
		})
	}
}

func TestMaxDepthBoundsRecursion(t *testing.T) {
	const tree = `{"type":"object","properties":{"kids":{"type":"array","maxItems":1,"items":{"$ref":"#"}}}}`
	for depth := 1; depth <= 4; depth++ {
		_, g := mustCompile(t, Options{MaxDepth: depth}, tree)
		doc := `{}`
		for range depth {
			doc = `{"kids":[` + doc + `]}`
		}
		if !g.match(doc) {
			t.Errorf("MaxDepth %d: %s does not match", depth, doc)
		}
		if doc = `{"kids":[` + doc + `]}`; g.match(doc) {
			t.Errorf("MaxDepth %d: %s matches", depth, doc)
		}
	}
}

func TestOptionsDefaults(t *testing.T) {
	s, _ := mustCompile(t, Options{}, `{"type":"string"}`)
	want := Options{MaxStringLength: DefaultMaxStringLength, MaxItems: DefaultMaxItems, MaxDepth: DefaultMaxDepth}
	if s.Options() != want {
		t.Fatalf("options %+v", s.Options())
	}
	if got := 2 + maxCharBytes*DefaultMaxStringLength; s.MaxBytes() != got {
		t.Fatalf("MaxBytes %d, want %d", s.MaxBytes(), got)
	}
}
