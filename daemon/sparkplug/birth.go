package sparkplug

import (
	sparkplugb "github.com/ember-edge/ember/protos/sparkplug/b/v1"
)

// bdSeqMetric is the metric by which NBIRTH and NDEATH carry the birth and
// death sequence number that pairs a death certificate with its birth.
const bdSeqMetric = "bdSeq"

// metricDef is what a birth certificate says about one metric. A
// metricDef is never changed once built, so decoding may read it after
// the Decoder's lock is released.
type metricDef struct {
	name     string
	typ      DataType
	alias    uint64
	hasAlias bool
	// members describes the members of a Template metric by name, so that
	// members of later instances may leave out their datatype.
	members map[string]*metricDef
}

// Per-entry costs, in bytes, that the Decoder charges against
// Options.MaxStateBytes on top of the strings it keeps: an estimate of
// the struct and map overhead, generous rather than exact.
const (
	defCost    = 128
	memberCost = 64
	nodeCost   = 256
	deviceCost = 128
)

// aliasTable is the birth certificate of one edge node or device.
type aliasTable struct {
	byAlias map[uint64]*metricDef
	byName  map[string]*metricDef
	// cost is what the table is charged against Options.MaxStateBytes.
	cost int
}

// newAliasTable builds the alias table of a birth certificate. Every metric
// of a birth must have a name and a datatype, and each name and alias must
// mean one metric: the birth is what later data is decoded by.
func newAliasTable(metrics []*sparkplugb.Payload_Metric) (*aliasTable, error) {
	t := &aliasTable{
		byAlias: make(map[uint64]*metricDef),
		byName:  make(map[string]*metricDef, len(metrics)),
	}
	for i, pm := range metrics {
		if pm.Name == nil {
			return nil, failf(ErrInvalidPayload, "birth metric %d has no name", i)
		}
		if pm.Datatype == nil {
			return nil, failf(ErrInvalidPayload, "birth metric %q has no datatype", pm.GetName())
		}
		d := &metricDef{name: pm.GetName(), typ: DataType(pm.GetDatatype()), alias: pm.GetAlias(), hasAlias: pm.Alias != nil}
		if prev, dup := t.byName[d.name]; dup {
			// A birth may carry historical values next to the current one;
			// only a metric defined two ways is ambiguous.
			if prev.typ != d.typ || prev.hasAlias != d.hasAlias || prev.alias != d.alias {
				return nil, failf(ErrInvalidPayload, "birth metric %q is defined twice, differently", d.name)
			}
			continue
		}
		t.byName[d.name] = d
		if d.hasAlias {
			if other, dup := t.byAlias[d.alias]; dup {
				return nil, failf(ErrInvalidPayload, "birth metrics %q and %q have the same alias %d", other.name, d.name, d.alias)
			}
			t.byAlias[d.alias] = d
		}
		t.cost += defCost + len(d.name)
		if tpl := pm.GetTemplateValue(); tpl != nil && d.typ == TypeTemplate {
			var cost int
			d.members, cost = memberDefs(tpl)
			t.cost += cost
		}
	}
	return t, nil
}

// memberDefs describes the members of a template in a birth certificate,
// and returns their cost. Members without a name are left out: nothing
// could refer to them.
func memberDefs(pt *sparkplugb.Payload_Template) (map[string]*metricDef, int) {
	members := make(map[string]*metricDef, len(pt.GetMetrics()))
	cost := 0
	for _, pm := range pt.GetMetrics() {
		if pm.Name == nil {
			continue
		}
		d := &metricDef{name: pm.GetName(), typ: DataType(pm.GetDatatype())}
		cost += memberCost + len(d.name)
		if tpl := pm.GetTemplateValue(); tpl != nil && d.typ == TypeTemplate {
			var c int
			d.members, c = memberDefs(tpl)
			cost += c
		}
		members[d.name] = d
	}
	return members, cost
}

// resolve finds the birth definition of a data metric, by alias or else
// by name. A datatype that the metric carries must agree with the
// birth's.
func (t *aliasTable) resolve(pm *sparkplugb.Payload_Metric) (*metricDef, error) {
	var d *metricDef
	switch {
	case pm.Alias != nil:
		d = t.byAlias[pm.GetAlias()]
		if d == nil {
			return nil, failf(ErrUnknownAlias, "alias %d is not in the birth certificate", pm.GetAlias())
		}
		if pm.Name != nil && pm.GetName() != d.name {
			return nil, failf(ErrUnknownAlias, "alias %d is %q in the birth certificate, but the metric is named %q", pm.GetAlias(), d.name, pm.GetName())
		}
	case pm.Name != nil:
		d = t.byName[pm.GetName()]
		if d == nil {
			return nil, failf(ErrUnknownMetric, "metric %q is not in the birth certificate", pm.GetName())
		}
	default:
		return nil, failf(ErrInvalidPayload, "metric has neither name nor alias")
	}
	if pm.Datatype != nil && DataType(pm.GetDatatype()) != d.typ {
		return nil, failf(ErrUnknownMetric, "metric %q is %v, but %v in the birth certificate", d.name, DataType(pm.GetDatatype()), d.typ)
	}
	return d, nil
}

// resolveCommand finds what it can about a command metric. Commands
// change no state and may be sent to an edge node whose birth ember has
// not seen, so a metric that names itself and its datatype needs no
// birth; t may be nil.
func (t *aliasTable) resolveCommand(pm *sparkplugb.Payload_Metric) (*metricDef, error) {
	if pm.Name != nil && pm.Datatype != nil {
		if t == nil {
			return nil, nil
		}
		return t.byName[pm.GetName()], nil
	}
	if t == nil {
		if pm.Alias != nil {
			return nil, failf(ErrUnknownAlias, "alias %d: no birth certificate on record", pm.GetAlias())
		}
		return nil, failf(ErrUnknownMetric, "metric %q has no datatype and no birth certificate is on record", pm.GetName())
	}
	return t.resolve(pm)
}

// bdSeq returns the value of the bdSeq metric among metrics, if any.
// Publishers declare it Int64 or UInt64 and send it in either integer
// field; its value is 0 to 255 either way.
func bdSeq(metrics []*sparkplugb.Payload_Metric) (uint64, bool) {
	for _, pm := range metrics {
		if pm.GetName() != bdSeqMetric {
			continue
		}
		switch v := pm.GetValue().(type) {
		case *sparkplugb.Payload_Metric_LongValue:
			return v.LongValue, true
		case *sparkplugb.Payload_Metric_IntValue:
			return uint64(v.IntValue), true
		}
	}
	return 0, false
}
