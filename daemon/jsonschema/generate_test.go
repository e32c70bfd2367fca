package jsonschema

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ember-edge/ember/daemon/engine"
	"github.com/ember-edge/ember/internal/testkit"
)

// e2eSchemas are PLC-result shapes generated with a model of random
// weights: whatever it writes is noise, so only the grammar can make it
// valid. Small caps keep the longest document, and the test, short.
var e2eSchemas = []struct {
	name, schema string
	opts         Options
}{
	{"alarm", `{"type":"object","properties":{
		"severity":{"enum":["low","medium","high"]},
		"action":{"type":"string","maxLength":40},
		"shutdown":{"type":"boolean"},
		"temperature":{"type":"number"}},
		"required":["severity","action","shutdown"]}`, Options{}},
	{"array of objects", `{"type":"array","minItems":1,"maxItems":3,"items":{"type":"object",
		"properties":{"tag":{"type":"string","pattern":"^[A-Z]{2}[0-9]{3}$"},"value":{"type":"number","minimum":-40,"maximum":125},
		"ok":{"type":"boolean"}},"required":["tag","value"],"additionalProperties":false}}`, Options{MaxStringLength: 16}},
	{"nested object with integers", `{"type":"object","properties":{
		"line":{"type":"integer","minimum":1,"maximum":12},
		"setpoint":{"type":"object","properties":{"rpm":{"type":"integer","minimum":0,"maximum":3000},
			"mode":{"const":"auto"},"note":{"type":["string","null"],"maxLength":10}},"required":["rpm","mode"]},
		"count":{"type":"integer","exclusiveMinimum":-5,"exclusiveMaximum":5}},
		"required":["line","setpoint","count"]}`, Options{}},
	{"recursive $ref", `{"$defs":{"step":{"type":"object","properties":{
		"op":{"enum":["open","close","wait"]},"then":{"type":"array","maxItems":2,"items":{"$ref":"#/$defs/step"}}},
		"required":["op"]}},
		"type":"object","properties":{"plan":{"$ref":"#/$defs/step"},"id":{"type":"integer","minimum":0}},"required":["plan","id"]}`,
		Options{MaxDepth: 2}},
}

func TestGeneratedOutputIsAlwaysValid(t *testing.T) {
	e, err := engine.New(engine.Options{LibDir: testkit.LibDir(t), Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	m, err := e.Load(engine.ModelSpec{Name: "tiny", Path: sharedModel(t)})
	if err != nil {
		t.Fatal(err)
	}
	samplings := []engine.Sampling{{Temperature: 0}}
	for seed := uint32(1); seed <= 5; seed++ {
		for _, temp := range []float32{0.7, 1.0, 1.5} {
			s := engine.DefaultSampling()
			s.Temperature, s.Seed, s.HasSeed = temp, seed, true
			samplings = append(samplings, s)
		}
	}
	for _, tc := range e2eSchemas {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := mustCompile(t, tc.opts, tc.schema)
			if s.MaxBytes()+64 > e2eSpec.ContextLength {
				t.Fatalf("MaxBytes %d does not fit the context", s.MaxBytes())
			}
			start, tokens := time.Now(), 0
			for _, smp := range samplings {
				req := engine.Request{
					Prompt:    "PLC report for line 4:",
					Grammar:   s.Grammar(),
					MaxTokens: s.MaxBytes() + 1,
					Sampling:  smp,
				}
				var out strings.Builder
				res, err := m.Generate(context.Background(), req, func(p string) error {
					out.WriteString(p)
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				tokens += res.CompletionTokens
				doc := out.String()
				if res.FinishReason != engine.FinishStop {
					t.Errorf("temp %g seed %d: finished %v after %d tokens, within max_tokens %d: %q",
						smp.Temperature, smp.Seed, res.FinishReason, res.CompletionTokens, req.MaxTokens, doc)
				}
				if !json.Valid([]byte(doc)) {
					t.Errorf("temp %g seed %d: not JSON: %q", smp.Temperature, smp.Seed, doc)
					continue
				}
				if err := s.Validate([]byte(doc)); err != nil {
					t.Errorf("temp %g seed %d: %q: %v", smp.Temperature, smp.Seed, doc, err)
				}
				if len(doc) > s.MaxBytes() {
					t.Errorf("%d bytes, more than MaxBytes %d", len(doc), s.MaxBytes())
				}
			}
			elapsed := time.Since(start)
			t.Logf("%d generations, %d tokens in %v (%v a token), max_tokens %d",
				len(samplings), tokens, elapsed.Round(time.Millisecond), (elapsed / time.Duration(max(tokens, 1))).Round(time.Microsecond), s.MaxBytes()+1)
		})
	}
}
