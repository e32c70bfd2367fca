package sparkplug

import (
	"errors"
	"fmt"
	"time"

	sparkplugb "github.com/ember-edge/ember/protos/sparkplug/b/v1"
)

// Metric is one decoded Sparkplug metric.
type Metric struct {
	// Name is the metric's name, from the message itself or, for a metric
	// sent by alias alone, from the birth certificate.
	Name     string
	Alias    uint64
	HasAlias bool
	// Type is the metric's datatype, from the message or, where the
	// message leaves it out, from the birth certificate.
	Type DataType
	// Value is nil when IsNull is set or Err is not nil; otherwise its Go
	// type is given by Type.GoType.
	Value any
	// Timestamp is when the value was sampled; zero if the publisher did
	// not say.
	Timestamp    time.Time
	IsNull       bool
	IsHistorical bool
	IsTransient  bool
	// Properties holds the metric's property set, such as "engUnit" or
	// "Quality", decoded like values: a nested property set is a
	// map[string]any and a property set list a []map[string]any. It is
	// nil if the metric has none.
	Properties map[string]any
	MetaData   *MetaData
	// Err is not nil when the metric's value, timestamp or properties
	// could not be decoded; it wraps ErrInvalidValue, ErrUnsupportedType or
	// ErrUnknownMetric. The message's other metrics are unaffected, so
	// that one misconfigured tag does not blind a pipeline to the rest.
	Err error
}

// MetaData describes a Bytes or File value.
type MetaData struct {
	IsMultiPart bool
	ContentType string
	Size        uint64
	// Seq numbers the parts of a multi-part value.
	Seq         uint64
	FileName    string
	FileType    string
	MD5         string
	Description string
}

// convertMetric decodes pm. def is what the birth certificate on record
// says about the metric, or nil where there is none or the metric is in a
// birth certificate itself; name and type from pm take precedence, since
// resolve has already checked that they agree with def.
func convertMetric(pm *sparkplugb.Payload_Metric, def *metricDef) Metric {
	m := Metric{
		Name:         pm.GetName(),
		Alias:        pm.GetAlias(),
		HasAlias:     pm.Alias != nil,
		Type:         DataType(pm.GetDatatype()),
		IsNull:       pm.GetIsNull(),
		IsHistorical: pm.GetIsHistorical(),
		IsTransient:  pm.GetIsTransient(),
	}
	if def != nil {
		if pm.Name == nil {
			m.Name = def.name
		}
		if pm.Datatype == nil {
			m.Type = def.typ
		}
	}
	var errs []error
	if pm.Timestamp != nil {
		ts, err := millis(pm.GetTimestamp())
		if err != nil {
			errs = append(errs, fmt.Errorf("timestamp: %w", err))
		}
		m.Timestamp = ts
	}
	if md := pm.GetMetadata(); md != nil {
		m.MetaData = &MetaData{
			IsMultiPart: md.GetIsMultiPart(),
			ContentType: md.GetContentType(),
			Size:        md.GetSize(),
			Seq:         md.GetSeq(),
			FileName:    md.GetFileName(),
			FileType:    md.GetFileType(),
			MD5:         md.GetMd5(),
			Description: md.GetDescription(),
		}
	}
	if ps := pm.GetProperties(); ps != nil {
		props, err := propertySet(ps)
		if err != nil {
			errs = append(errs, fmt.Errorf("properties: %w", err))
		}
		m.Properties = props
	}
	r := metricRaw(pm)
	switch {
	case m.IsNull:
		// is_null wins over a value sent alongside it, as the
		// specification says the value must then be left out.
	case r.field == fieldNone:
		// A metric with neither a value nor is_null is taken as null, as
		// Eclipse Tahu does: some publishers mark nulls this way.
		m.IsNull = true
	case pm.Datatype == nil && def == nil:
		errs = append(errs, failf(ErrUnknownMetric, "no datatype"))
	default:
		v, err := metricValue(m.Type, r, def)
		if err != nil {
			errs = append(errs, err)
		} else {
			m.Value = v
		}
	}
	if len(errs) > 0 {
		m.Err = fmt.Errorf("metric %s: %w", m.label(), errors.Join(errs...))
		m.Value = nil
	}
	return m
}

// label names m in errors: by name, or by alias when it has no name.
func (m Metric) label() string {
	if m.Name == "" && m.HasAlias {
		return fmt.Sprintf("alias %d", m.Alias)
	}
	return fmt.Sprintf("%q", m.Name)
}

// metricValue converts a metric value, the only kind that can be a data
// set or template.
func metricValue(t DataType, r raw, def *metricDef) (any, error) {
	switch t {
	case TypeDataSet:
		if r.field != fieldDataSet {
			return nil, wrongField(t, r)
		}
		return dataSet(r.ds)
	case TypeTemplate:
		if r.field != fieldTemplate {
			return nil, wrongField(t, r)
		}
		return template(r.tpl, def)
	case TypePropertySet, TypePropertySetList:
		return nil, failf(ErrUnsupportedType, "datatype %v is for properties, not metrics", t)
	}
	return scalar(t, r)
}

// metricList holds metrics in message order, with the lookups that
// Message and Template share.
type metricList []Metric

// fields maps each metric name to its value. A name that occurs more than
// once (a historical value next to the current one, say) maps to the last
// current value, or to the last historical value if there is no current
// one. Metrics with an Err are left out; a null metric maps to nil.
func (ms metricList) fields() map[string]any {
	out := make(map[string]any, len(ms))
	for _, historical := range []bool{true, false} {
		for _, m := range ms {
			if m.Err == nil && m.IsHistorical == historical {
				out[m.Name] = m.Value
			}
		}
	}
	return out
}

// lookup returns the metric called name, by the same rule as fields, but
// including metrics with an Err.
func (ms metricList) lookup(name string) (Metric, bool) {
	var found Metric
	var ok bool
	for _, m := range ms {
		if m.Name == name && (!m.IsHistorical || !ok || found.IsHistorical) {
			found, ok = m, true
		}
	}
	return found, ok
}
