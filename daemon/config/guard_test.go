package config

import (
	"strings"
	"testing"
)

func TestPipelineGuardAndAllowAreValidated(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"bad guard", "pipelines:\n  - {name: a, match: x/y, prompt: p, guard: block}\n", `pipelines[0].guard: "block" is not one of off, flag, quarantine`},
		{"wildcard allow", "pipelines:\n  - {name: a, match: x/y, prompt: p, publish: {allow: [\"plant/#\"]}}\n", `pipelines[0].publish.allow[0]: "plant/#" must be a topic prefix`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc), "/etc/ember")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestPipelineGuardDefaultsToFlag(t *testing.T) {
	ps, err := ParsePipelines([]byte("name: a\nmatch: x/y\nprompt: p\n"))
	if err != nil || ps[0].Guard != "flag" || ps[0].Publish.Allow != nil {
		t.Fatalf("defaults: %+v %v", ps, err)
	}
}
