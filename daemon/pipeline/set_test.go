package pipeline

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ember-edge/ember/daemon/config"
)

func defs(t *testing.T, yamlDefs string) []config.Pipeline {
	t.Helper()
	ds, err := config.ParsePipelines([]byte(yamlDefs))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return ds
}

const localDefs = `
- {name: notes, match: plant/notes, decode: text, prompt: "Summarise: {{.text}}"}
- {name: alarms, match: plant/+/alarm, prompt: "Alarm {{.code}}"}
`

func TestSetPutsTheFleetsPipelinesOverTheConfigs(t *testing.T) {
	s := NewSet("press-07")
	names, err := s.SetLocal(defs(t, localDefs))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"notes", "alarms"}) {
		t.Fatalf("names = %v", names)
	}
	if err := s.SetFleet(defs(t, `- {name: alarms, match: fleet/+/alarm, prompt: "Fleet alarm {{.code}}"}`)); err != nil {
		t.Fatal(err)
	}
	p, ok := s.Snapshot().Get("alarms")
	if !ok || p.Config().Match != "fleet/+/alarm" {
		t.Fatalf("alarms after the fleet's bundle: %+v", p.Config())
	}
	if !s.Wants("plant/notes") || s.Wants("plant/3/alarm") || !s.Wants("fleet/3/alarm") {
		t.Fatal("Wants does not follow the merged set")
	}
	// A reload of the config keeps the fleet's pipeline on top.
	if _, err := s.SetLocal(defs(t, localDefs)); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.Snapshot().Get("alarms"); p.Config().Match != "fleet/+/alarm" {
		t.Fatal("a config reload replaced the fleet's pipeline")
	}
	// Without the fleet's bundle the config's pipeline is back.
	if err := s.SetFleet(nil); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.Snapshot().Get("alarms"); p.Config().Match != "plant/+/alarm" {
		t.Fatal("the config's pipeline did not come back")
	}
}

func TestSetKeepsTheRunningPipelinesWhenNewOnesDoNotCompile(t *testing.T) {
	s := NewSet("press-07")
	if _, err := s.SetLocal(defs(t, localDefs)); err != nil {
		t.Fatal(err)
	}
	before := s.Snapshot()
	_, err := s.SetLocal(defs(t, `- {name: broken, match: plant/x, prompt: "{{.a"}`))
	if err == nil {
		t.Fatal("a template that does not parse was accepted")
	}
	if s.Snapshot() != before {
		t.Fatal("a failed change replaced the running set")
	}
	if err := s.SetFleet(defs(t, `- {name: broken, match: plant/x, prompt: "{{.a"}`)); err == nil || s.Snapshot() != before {
		t.Fatal("a failed fleet change replaced the running set")
	}
}

func TestSetFiltersNameEveryTopicEmberTakes(t *testing.T) {
	s := NewSet("press-07")
	if got := s.Filters(); len(got) != 0 {
		t.Fatalf("an empty set with requests off subscribes to %v", got)
	}
	if _, ok := s.RequestModel("ember/v1/press-07/infer/tiny"); ok || s.Wants("ember/v1/press-07/infer/tiny") {
		t.Fatal("the request topic is taken while mqtt.requests.enabled is off")
	}
	s.EnableRequests(true)
	if got := s.Filters(); !slices.Equal(got, []string{"ember/v1/press-07/infer/+"}) {
		t.Fatalf("an empty set subscribes to %v", got)
	}
	if _, err := s.SetLocal(defs(t, localDefs+`- {name: edge, match: "spBv1.0/plant/DDATA/+/+", decode: sparkplugb, prompt: "x {{.t}}"}`)); err != nil {
		t.Fatal(err)
	}
	want := []string{"ember/v1/press-07/infer/+", "plant/notes", "plant/+/alarm", "spBv1.0/plant/DDATA/+/+", "spBv1.0/#"}
	if got := s.Filters(); !slices.Equal(got, want) {
		t.Fatalf("filters = %v, want %v", got, want)
	}
	cases := []struct {
		topic string
		want  bool
	}{
		{"ember/v1/press-07/infer/tiny", true},
		{"ember/v1/press-07/infer/tiny/extra", false},
		{"ember/v1/other/infer/tiny", false},
		{"spBv1.0/plant/NBIRTH/node1", true}, // births carry the aliases data needs
		{"plant/notes", true},
		{"plant/other", false},
	}
	for _, c := range cases {
		if got := s.Wants(c.topic); got != c.want {
			t.Errorf("Wants(%q) = %v, want %v", c.topic, got, c.want)
		}
	}
}

func TestSetRefusesFiltersOverlappingEmbersTopics(t *testing.T) {
	s := NewSet("press-07")
	for _, match := range []string{"+/#", "#", "ember/v1/press-07/result/x", "ember/+/press-07/#", "+/v1/+/infer/+"} {
		t.Run(match, func(t *testing.T) {
			// Compile refuses them itself, whatever validated the
			// definitions before.
			err := s.SetFleet([]config.Pipeline{mustDef(t, match)})
			if err == nil || !strings.Contains(err.Error(), `pipeline "loop"`) || !strings.Contains(err.Error(), match) {
				t.Fatalf("SetFleet = %v, want a refusal naming the pipeline and filter", err)
			}
		})
	}
	if err := s.SetFleet(defs(t, `- {name: other, match: "ember/v1/press-08/result/+", prompt: x}`)); err != nil {
		t.Fatalf("another device's results are fair input: %v", err)
	}
}

// mustDef is a pipeline definition matching match, bypassing config
// validation.
func mustDef(t *testing.T, match string) config.Pipeline {
	d := defs(t, `- {name: loop, match: plant/x, prompt: x}`)[0]
	d.Match = match
	return d
}

func TestSetTellsSubscribersOfEveryChange(t *testing.T) {
	s := NewSet("press-07")
	changed, stop := s.Changed()
	defer stop()
	if _, err := s.SetLocal(defs(t, localDefs)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(time.Second):
		t.Fatal("no notice of a change")
	}
	s.SetLocal(defs(t, `- {name: broken, match: plant/x, prompt: "{{.a"}`))
	select {
	case <-changed:
		t.Fatal("a refused change was announced")
	default:
	}
	stop()
	s.SetFleet(nil) // a stopped subscriber is not blocked on, nor told
}

func TestAFleetBundleCannotMakeALocalPipelineShared(t *testing.T) {
	s := NewSet("press-07")
	if _, err := s.SetLocal(defs(t, `- {name: recipes, match: plant/recipes, decode: text, classification: local, prompt: "{{.text}}"}`)); err != nil {
		t.Fatal(err)
	}
	bundle := defs(t, `- {name: recipes, match: plant/recipes, decode: text, classification: shared, prompt: "{{.text}}"}`)
	if err := s.CheckFleet(bundle); !errors.Is(err, ErrDeclassify) {
		t.Fatalf("CheckFleet = %v, want ErrDeclassify before anything is installed", err)
	}
	err := s.SetFleet(bundle)
	if !errors.Is(err, ErrDeclassify) || !strings.Contains(err.Error(), `"recipes"`) {
		t.Fatalf("SetFleet = %v, want ErrDeclassify naming the pipeline", err)
	}
	if p, _ := s.Snapshot().Get("recipes"); p.Config().Classification != "local" {
		t.Fatal("the refused bundle replaced the local pipeline")
	}
	// A bundle that keeps it local, or adds shared pipelines of its own, is fine.
	if err := s.SetFleet(defs(t, `
- {name: recipes, match: plant/recipes2, decode: text, classification: local, prompt: "{{.text}}"}
- {name: summaries, match: plant/summary, decode: text, classification: shared, prompt: "{{.text}}"}`)); err != nil {
		t.Fatal(err)
	}
}
