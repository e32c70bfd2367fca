package jsonschema

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"testing"
)

// fuzzSchema exercises every keyword the validator knows.
const fuzzSchema = `{"$defs":{"tag":{"type":"string","pattern":"^[A-Z]{2}[0-9]{3}$"},
	"node":{"type":"object","properties":{"v":{"type":"integer","minimum":-5,"exclusiveMaximum":50},"kids":{"type":"array","maxItems":2,"items":{"$ref":"#/$defs/node"}}}}},
	"type":"object","properties":{
	"severity":{"enum":["low","medium","high",1,null,{"a":[1]}]},
	"action":{"type":"string","minLength":1,"maxLength":40},
	"shutdown":{"type":"boolean"},
	"temperature":{"type":["number","null"],"minimum":-50,"maximum":500},
	"tags":{"type":"array","minItems":1,"maxItems":3,"items":{"$ref":"#/$defs/tag"}},
	"tree":{"$ref":"#/$defs/node"},
	"mode":{"const":"auto"},
	"extra":{"additionalProperties":{"type":"integer"}}},
	"required":["severity","action","shutdown"],"additionalProperties":false}`

func FuzzValidate(f *testing.F) {
	for _, seed := range []string{
		`{"severity":"low","action":"a","shutdown":true}`,
		`{"severity":{"a":[1.0]},"action":"stop","shutdown":false,"temperature":499.99,"tags":["AB123"],"tree":{"v":1,"kids":[{"v":2}]},"mode":"auto","extra":{"x":1}}`,
		`{"severity":"urgent","action":"","shutdown":1,"temperature":1e999,"tags":[],"x":0,"x":1}`,
		`[`, `"\ud800"`, `1e-999999999999999999999`, `{"tree":{"kids":[{"kids":[{"kids":[]}]}]}}`, "\xff", ``,
		"{\"severity\":\"low\",\"action\":\"\xfb\",\"shutdown\":true}",
	} {
		f.Add([]byte(seed))
	}
	s, err := Options{MaxStringLength: 40, MaxItems: 3, MaxDepth: 3}.Compile([]byte(fuzzSchema))
	if err != nil {
		f.Fatal(err)
	}
	g, err := parseGBNF(s.Grammar())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := s.Validate(data)
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("error %v is not ErrInvalid", err)
		}
		if err == nil && !json.Valid(data) {
			t.Fatalf("accepted what is not JSON: %q", data)
		}
		// What the grammar lets a model write must validate.
		if len(data) <= 2048 && g.match(string(data)) && err != nil {
			t.Fatalf("grammar matches %q, which does not validate: %v", data, err)
		}
	})
}

func FuzzCompile(f *testing.F) {
	for _, tc := range goodSchemas {
		f.Add([]byte(tc.schema))
	}
	for _, seed := range []string{
		fuzzSchema, `{"type":"integer","minimum":-1e300,"exclusiveMaximum":0.5}`, `{"pattern":"(?i)^((a|bc)*){2,}[^x-z]?$"}`,
		`{"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"}`, `{"enum":[[],{},"",0.0]}`,
		`{"type":"array","items":{"$ref":"#"},"minItems":1}`, `{"properties":{"a":{"required":["b"],"properties":{"b":false}}}}`,
	} {
		f.Add([]byte(seed))
	}
	opts := Options{MaxStringLength: 8, MaxItems: 3, MaxDepth: 2}
	f.Fuzz(func(t *testing.T, schema []byte) {
		s, err := opts.Compile(schema)
		if err != nil {
			if !errors.Is(err, ErrInvalidSchema) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		g, err := parseGBNF(s.Grammar())
		if err != nil {
			t.Fatalf("grammar does not read: %v\n%s", err, s.Grammar())
		}
		rng := rand.New(rand.NewPCG(uint64(len(schema)), 1))
		for range 3 {
			doc, ok := g.sample(rng, 1<<16)
			if !ok {
				continue // huge, not wrong: MaxBytes may be astronomical
			}
			if len(doc) > s.MaxBytes() {
				t.Fatalf("%d bytes, more than MaxBytes %d: %q", len(doc), s.MaxBytes(), doc)
			}
			if !json.Valid([]byte(doc)) {
				t.Fatalf("grammar wrote what is not JSON: %q\n%s", doc, s.Grammar())
			}
			if err := s.Validate([]byte(doc)); err != nil && len(s.Gaps()) == 0 {
				t.Fatalf("grammar wrote %q, which does not validate: %v\n%s", doc, err, s.Grammar())
			}
		}
	})
}
