package sparkplug

import (
	"fmt"

	sparkplugb "github.com/ember-edge/ember/protos/sparkplug/b/v1"
)

// Template is the value of a Template metric: a definition of a
// user-defined type (an Ignition UDT) in a birth certificate, or an
// instance of one.
type Template struct {
	Version string
	// Ref names the definition that an instance is of; it is empty in a
	// definition.
	Ref          string
	IsDefinition bool
	Parameters   []Parameter
	// Metrics are the template's members, decoded like a message's
	// metrics. A member's Err is its own; it does not set the Err of the
	// Template metric.
	Metrics []Metric
}

// Parameter is a named, typed constant of a template.
type Parameter struct {
	Name  string
	Type  DataType
	Value any
}

// Fields maps the name of each member of t to its value, by the rules of
// Message.Fields.
func (t Template) Fields() map[string]any { return metricList(t.Metrics).fields() }

// Metric returns the member of t called name, by the rules of
// Message.Metric.
func (t Template) Metric(name string) (Metric, bool) { return metricList(t.Metrics).lookup(name) }

// template decodes a template value. Members of an instance in a data
// message may leave out their datatype, as members of a message may;
// def, the template metric's birth definition, then supplies it.
func template(pt *sparkplugb.Payload_Template, def *metricDef) (Template, error) {
	t := Template{
		Version:      pt.GetVersion(),
		Ref:          pt.GetTemplateRef(),
		IsDefinition: pt.GetIsDefinition(),
		Parameters:   make([]Parameter, len(pt.GetParameters())),
		Metrics:      make([]Metric, len(pt.GetMetrics())),
	}
	for i, pp := range pt.GetParameters() {
		p := Parameter{Name: pp.GetName(), Type: DataType(pp.GetType())}
		if r := parameterRaw(pp); r.field != fieldNone {
			v, err := scalar(p.Type, r)
			if err != nil {
				return Template{}, fmt.Errorf("Template: parameter %q: %w", p.Name, err)
			}
			p.Value = v
		}
		t.Parameters[i] = p
	}
	for i, pm := range pt.GetMetrics() {
		var member *metricDef
		if def != nil {
			member = def.members[pm.GetName()]
		}
		t.Metrics[i] = convertMetric(pm, member)
	}
	return t, nil
}
