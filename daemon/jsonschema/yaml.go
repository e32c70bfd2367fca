package jsonschema

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxYAMLDepth bounds nesting, aliases included: an alias bomb must not
// hang config loading.
const maxYAMLDepth = 256

// FromYAML converts a schema written in YAML to the JSON text Compile
// reads. It takes a yaml.Node (a config field of type yaml.Node holds one)
// rather than a decoded map because a map forgets the order of keys, and
// the order of properties is the order the grammar writes them in.
//
// Scalars convert by their resolved YAML tag: strings, integers (0x1F,
// 0o17 and 1_000 included), floats, booleans and null; timestamps stay
// strings. Mapping keys must be strings. Infinity, NaN, binary values and
// merge keys (<<) are errors, wrapping ErrInvalidSchema.
func FromYAML(n *yaml.Node) ([]byte, error) {
	var b strings.Builder
	if err := yamlToJSON(&b, n, 0); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

func yamlErr(n *yaml.Node, format string, args ...any) error {
	return fmt.Errorf("yaml line %d: %s: %w", n.Line, fmt.Sprintf(format, args...), ErrInvalidSchema)
}

func yamlToJSON(b *strings.Builder, n *yaml.Node, depth int) error {
	if n == nil {
		return fmt.Errorf("yaml: no schema: %w", ErrInvalidSchema)
	}
	if depth > maxYAMLDepth {
		return yamlErr(n, "nested more than %d deep", maxYAMLDepth)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return yamlErr(n, "empty document")
		}
		return yamlToJSON(b, n.Content[0], depth+1)
	case yaml.AliasNode:
		return yamlToJSON(b, n.Alias, depth+1)
	case yaml.SequenceNode:
		b.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := yamlToJSON(b, c, depth+1); err != nil {
				return err
			}
		}
		b.WriteByte(']')
		return nil
	case yaml.MappingNode:
		b.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			for k.Kind == yaml.AliasNode && k.Alias != nil {
				k = k.Alias
			}
			if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
				if k.ShortTag() == "!!merge" {
					return yamlErr(k, "merge keys (<<) are not supported")
				}
				return yamlErr(k, "key %q is not a string; quote it", k.Value)
			}
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(quoteJSON(k.Value))
			b.WriteByte(':')
			if err := yamlToJSON(b, v, depth+1); err != nil {
				return err
			}
		}
		b.WriteByte('}')
		return nil
	case yaml.ScalarNode:
		return yamlScalar(b, n)
	}
	return yamlErr(n, "unexpected YAML node kind %d", n.Kind)
}

func yamlScalar(b *strings.Builder, n *yaml.Node) error {
	switch tag := n.ShortTag(); tag {
	case "!!str", "!!timestamp":
		b.WriteString(quoteJSON(n.Value))
	case "!!null":
		b.WriteString("null")
	case "!!bool":
		var v bool
		if err := n.Decode(&v); err != nil {
			return yamlErr(n, "%v", err)
		}
		b.WriteString(strconv.FormatBool(v))
	case "!!int", "!!float":
		// A YAML number that is already a JSON number is kept as written,
		// so that 0.1 stays exactly 0.1.
		if _, ok := parseDecimal(n.Value); ok {
			b.WriteString(n.Value)
			return nil
		}
		var v any
		if err := n.Decode(&v); err != nil {
			return yamlErr(n, "%v", err)
		}
		switch v := v.(type) {
		case int:
			b.WriteString(strconv.Itoa(v))
		case int64:
			b.WriteString(strconv.FormatInt(v, 10))
		case uint64:
			b.WriteString(strconv.FormatUint(v, 10))
		case float64:
			if math.IsInf(v, 0) || math.IsNaN(v) {
				return yamlErr(n, "%s is not a JSON number", n.Value)
			}
			b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
		default:
			return yamlErr(n, "%s is not a JSON number", n.Value)
		}
	default:
		return yamlErr(n, "values tagged %s are not supported", tag)
	}
	return nil
}
