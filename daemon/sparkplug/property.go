package sparkplug

import (
	"fmt"

	sparkplugb "github.com/ember-edge/ember/protos/sparkplug/b/v1"
)

// propertySet decodes a property set into a map from key to value. A
// null property maps to nil; a key that occurs twice keeps its last value.
func propertySet(ps *sparkplugb.Payload_PropertySet) (map[string]any, error) {
	keys, values := ps.GetKeys(), ps.GetValues()
	if len(keys) != len(values) {
		return nil, failf(ErrInvalidValue, "%d property keys but %d values", len(keys), len(values))
	}
	out := make(map[string]any, len(keys))
	for i, k := range keys {
		v, err := propertyValue(values[i])
		if err != nil {
			return nil, fmt.Errorf("property %q: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

func propertyValue(pv *sparkplugb.Payload_PropertyValue) (any, error) {
	r := propertyRaw(pv)
	if pv.GetIsNull() || r.field == fieldNone {
		return nil, nil
	}
	switch t := DataType(pv.GetType()); t {
	case TypePropertySet:
		if r.field != fieldPropertySet {
			return nil, wrongField(t, r)
		}
		return propertySet(r.ps)
	case TypePropertySetList:
		if r.field != fieldPropertySetList {
			return nil, wrongField(t, r)
		}
		sets := r.psl.GetPropertyset()
		out := make([]map[string]any, len(sets))
		for i, ps := range sets {
			m, err := propertySet(ps)
			if err != nil {
				return nil, fmt.Errorf("set %d: %w", i, err)
			}
			out[i] = m
		}
		return out, nil
	case TypeDataSet, TypeTemplate:
		return nil, failf(ErrUnsupportedType, "datatype %v in a property", t)
	default:
		return scalar(t, r)
	}
}
