package sparkplug

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// kind is a message type of the Sparkplug B schema.
type kind uint8

const (
	kindNone kind = iota
	kindPayload
	kindMetric
	kindMetaData
	kindPropertySet
	kindPropertySetList
	kindPropertyValue
	kindDataSet
	kindRow
	kindDataSetValue
	kindTemplate
	kindParameter
	// kindExtension is any of the extension messages: all of its fields
	// are unknown, and kept by Unmarshal as raw bytes.
	kindExtension
	numKinds
)

// fieldSpec is the scanner's view of one field of the schema.
type fieldSpec struct {
	name     string
	wire     protowire.Type
	child    kind // the message type of a message field
	repeated bool // only for naming the element in errors
	packed   bool // a repeated scalar that may also come packed
}

// schema lists, for every message type, the fields of
// protos/sparkplug/b/v1/sparkplug_b.proto. Fields not listed are
// forward-compatible unknowns or extensions, skipped after their length
// is checked.
var schema = [numKinds]map[protowire.Number]fieldSpec{
	kindPayload: {
		1: {name: "timestamp", wire: protowire.VarintType},
		2: {name: "metrics", wire: protowire.BytesType, child: kindMetric, repeated: true},
		3: {name: "seq", wire: protowire.VarintType},
		4: {name: "uuid", wire: protowire.BytesType},
		5: {name: "body", wire: protowire.BytesType},
	},
	kindMetric: {
		1:  {name: "name", wire: protowire.BytesType},
		2:  {name: "alias", wire: protowire.VarintType},
		3:  {name: "timestamp", wire: protowire.VarintType},
		4:  {name: "datatype", wire: protowire.VarintType},
		5:  {name: "is_historical", wire: protowire.VarintType},
		6:  {name: "is_transient", wire: protowire.VarintType},
		7:  {name: "is_null", wire: protowire.VarintType},
		8:  {name: "metadata", wire: protowire.BytesType, child: kindMetaData},
		9:  {name: "properties", wire: protowire.BytesType, child: kindPropertySet},
		10: {name: "int_value", wire: protowire.VarintType},
		11: {name: "long_value", wire: protowire.VarintType},
		12: {name: "float_value", wire: protowire.Fixed32Type},
		13: {name: "double_value", wire: protowire.Fixed64Type},
		14: {name: "boolean_value", wire: protowire.VarintType},
		15: {name: "string_value", wire: protowire.BytesType},
		16: {name: "bytes_value", wire: protowire.BytesType},
		17: {name: "dataset_value", wire: protowire.BytesType, child: kindDataSet},
		18: {name: "template_value", wire: protowire.BytesType, child: kindTemplate},
		19: {name: "extension_value", wire: protowire.BytesType, child: kindExtension},
	},
	kindMetaData: {
		1: {name: "is_multi_part", wire: protowire.VarintType},
		2: {name: "content_type", wire: protowire.BytesType},
		3: {name: "size", wire: protowire.VarintType},
		4: {name: "seq", wire: protowire.VarintType},
		5: {name: "file_name", wire: protowire.BytesType},
		6: {name: "file_type", wire: protowire.BytesType},
		7: {name: "md5", wire: protowire.BytesType},
		8: {name: "description", wire: protowire.BytesType},
	},
	kindPropertySet: {
		1: {name: "keys", wire: protowire.BytesType, repeated: true},
		2: {name: "values", wire: protowire.BytesType, child: kindPropertyValue, repeated: true},
	},
	kindPropertySetList: {
		1: {name: "propertyset", wire: protowire.BytesType, child: kindPropertySet, repeated: true},
	},
	kindPropertyValue: {
		1:  {name: "type", wire: protowire.VarintType},
		2:  {name: "is_null", wire: protowire.VarintType},
		3:  {name: "int_value", wire: protowire.VarintType},
		4:  {name: "long_value", wire: protowire.VarintType},
		5:  {name: "float_value", wire: protowire.Fixed32Type},
		6:  {name: "double_value", wire: protowire.Fixed64Type},
		7:  {name: "boolean_value", wire: protowire.VarintType},
		8:  {name: "string_value", wire: protowire.BytesType},
		9:  {name: "propertyset_value", wire: protowire.BytesType, child: kindPropertySet},
		10: {name: "propertysets_value", wire: protowire.BytesType, child: kindPropertySetList},
		11: {name: "extension_value", wire: protowire.BytesType, child: kindExtension},
	},
	kindDataSet: {
		1: {name: "num_of_columns", wire: protowire.VarintType},
		2: {name: "columns", wire: protowire.BytesType, repeated: true},
		3: {name: "types", wire: protowire.VarintType, repeated: true, packed: true},
		4: {name: "rows", wire: protowire.BytesType, child: kindRow, repeated: true},
	},
	kindRow: {
		1: {name: "elements", wire: protowire.BytesType, child: kindDataSetValue, repeated: true},
	},
	kindDataSetValue: {
		1: {name: "int_value", wire: protowire.VarintType},
		2: {name: "long_value", wire: protowire.VarintType},
		3: {name: "float_value", wire: protowire.Fixed32Type},
		4: {name: "double_value", wire: protowire.Fixed64Type},
		5: {name: "boolean_value", wire: protowire.VarintType},
		6: {name: "string_value", wire: protowire.BytesType},
		7: {name: "extension_value", wire: protowire.BytesType, child: kindExtension},
	},
	kindTemplate: {
		1: {name: "version", wire: protowire.BytesType},
		2: {name: "metrics", wire: protowire.BytesType, child: kindMetric, repeated: true},
		3: {name: "parameters", wire: protowire.BytesType, child: kindParameter, repeated: true},
		4: {name: "template_ref", wire: protowire.BytesType},
		5: {name: "is_definition", wire: protowire.VarintType},
	},
	kindParameter: {
		1: {name: "name", wire: protowire.BytesType},
		2: {name: "type", wire: protowire.VarintType},
		3: {name: "int_value", wire: protowire.VarintType},
		4: {name: "long_value", wire: protowire.VarintType},
		5: {name: "float_value", wire: protowire.Fixed32Type},
		6: {name: "double_value", wire: protowire.Fixed64Type},
		7: {name: "boolean_value", wire: protowire.VarintType},
		8: {name: "string_value", wire: protowire.BytesType},
		9: {name: "extension_value", wire: protowire.BytesType, child: kindExtension},
	},
	kindExtension: {},
}

// scanner walks a Sparkplug B payload's wire format before it is decoded,
// without allocating, and rejects it if it is malformed or over a limit.
//
// proto.Unmarshal allocates a Go struct of a hundred bytes or more for
// every nested message, some of which take two bytes on the wire, and it
// quietly files a known field with the wrong wire type among the unknown
// fields. Scanning first bounds what Unmarshal will allocate by the
// Decoder's limits (fields, metrics, depth) rather than by the payload's
// whims, and turns a wrong wire type into an error that says where it is.
type scanner struct {
	limits  *Options
	fields  int
	metrics int
}

// scan checks the message of type k encoded in b, which is nested depth
// levels below the payload.
func (s *scanner) scan(b []byte, k kind, depth int) error {
	if depth > s.limits.MaxDepth {
		return failf(ErrTooLarge, "nested more than %d messages deep", s.limits.MaxDepth)
	}
	// Occurrences of each repeated message field so far, to name the one
	// that is bad. Field numbers of the schema are all below 20.
	var seen [20]int
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return failf(ErrMalformed, "bad field tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		if s.fields++; s.fields > s.limits.MaxFields {
			return failf(ErrTooLarge, "more than %d protobuf fields", s.limits.MaxFields)
		}
		spec, known := schema[k][num]
		name := spec.name
		if !known {
			name = fmt.Sprintf("field %d", num)
		}
		// Sparkplug uses no groups, and skipping one means recursing
		// through arbitrarily deep nesting: refuse them outright.
		if typ == protowire.StartGroupType || typ == protowire.EndGroupType {
			return failf(ErrMalformed, "%s: group wire type, which Sparkplug does not use", name)
		}
		if known && typ != spec.wire && !(spec.packed && typ == protowire.BytesType) {
			return failf(ErrMalformed, "%s: wire type %d, want %d", name, typ, spec.wire)
		}
		if known && spec.child != kindNone {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return failf(ErrMalformed, "%s: %v", name, protowire.ParseError(n))
			}
			if spec.child == kindMetric {
				if s.metrics++; s.metrics > s.limits.MaxMetrics {
					return failf(ErrTooLarge, "more than %d metrics", s.limits.MaxMetrics)
				}
			}
			if err := s.scan(v, spec.child, depth+1); err != nil {
				if spec.repeated {
					return fmt.Errorf("%s[%d]: %w", name, seen[num], err)
				}
				return fmt.Errorf("%s: %w", name, err)
			}
			if spec.repeated {
				seen[num]++
			}
			b = b[n:]
			continue
		}
		if known && spec.packed && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return failf(ErrMalformed, "%s: %v", name, protowire.ParseError(n))
			}
			for len(v) > 0 {
				_, m := protowire.ConsumeVarint(v)
				if m < 0 {
					return failf(ErrMalformed, "%s: packed value: %v", name, protowire.ParseError(m))
				}
				v = v[m:]
			}
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return failf(ErrMalformed, "%s: %v", name, protowire.ParseError(n))
		}
		b = b[n:]
	}
	return nil
}
