package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads, defaults and validates the config file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(data, filepath.Dir(abs))
	if err != nil {
		return nil, fmt.Errorf("config %s:\n%w", path, err)
	}
	return cfg, nil
}

// Parse reads a config document. Keys the document leaves out keep their
// defaults; relative paths are resolved against dir.
func Parse(data []byte, dir string) (*Config, error) {
	cfg := Default()
	cfg.dir = dir
	cfg.lines = map[string]int{}

	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	if len(doc.Content) > 0 {
		var errs []error
		decodeNode(doc.Content[0], reflect.ValueOf(cfg).Elem(), "", cfg.lines, &errs)
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
	}
	cfg.resolvePaths()
	cfg.derive()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	nodeType        = reflect.TypeFor[yaml.Node]()
)

// decodeNode decodes n into v field by field, so that every unknown key and
// every ill-typed value is reported with its path and line, all at once.
func decodeNode(n *yaml.Node, v reflect.Value, path string, lines map[string]int, errs *[]error) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if path != "" {
		lines[path] = n.Line
	}
	fail := func(format string, args ...any) {
		*errs = append(*errs, fmt.Errorf("line %d: %s: %s", n.Line, path, fmt.Sprintf(format, args...)))
	}
	if v.Type() == nodeType {
		// Kept as YAML for the package that knows its shape (a schema).
		v.Set(reflect.ValueOf(*n))
		return
	}
	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		if err := n.Decode(v.Addr().Interface()); err != nil {
			fail("%v", err)
		}
		return
	}
	isNull := n.Kind == yaml.ScalarNode && n.Tag == "!!null"
	switch v.Kind() {
	case reflect.Struct:
		if isNull {
			return
		}
		if n.Kind != yaml.MappingNode {
			fail("want a mapping of keys, got %s", describe(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			sub := join(path, key.Value)
			field, ok := fieldByKey(v, key.Value)
			if !ok {
				msg := fmt.Sprintf("line %d: unknown key %q", key.Line, sub)
				if near := nearest(key.Value, keysOf(v.Type())); near != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", join(path, near))
				}
				*errs = append(*errs, errors.New(msg))
				continue
			}
			decodeNode(val, field, sub, lines, errs)
		}
	case reflect.Slice:
		if isNull {
			v.Set(reflect.Zero(v.Type()))
			return
		}
		if n.Kind != yaml.SequenceNode {
			fail("want a list, got %s", describe(n))
			return
		}
		out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			decodeNode(item, out.Index(i), fmt.Sprintf("%s[%d]", path, i), lines, errs)
		}
		v.Set(out)
	case reflect.Pointer:
		if isNull {
			v.Set(reflect.Zero(v.Type()))
			return
		}
		p := reflect.New(v.Type().Elem())
		decodeNode(n, p.Elem(), path, lines, errs)
		v.Set(p)
	default:
		if n.Kind != yaml.ScalarNode && v.Kind() != reflect.Map && v.Kind() != reflect.Interface {
			fail("want a single value, got %s", describe(n))
			return
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			fail("want %s, got %s", typeName(v.Type()), describe(n))
		}
	}
}

func fieldByKey(v reflect.Value, key string) (reflect.Value, bool) {
	t := v.Type()
	for i := range t.NumField() {
		if tagName(t.Field(i)) == key {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

func keysOf(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		if name := tagName(t.Field(i)); name != "" {
			keys = append(keys, name)
		}
	}
	return keys
}

func tagName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func describe(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return fmt.Sprintf("%q", n.Value)
	}
	return "a " + kindName(n)
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Map:
		return "a mapping"
	}
	return t.String()
}

// nearest returns the candidate within edit distance 2 of key, to suggest
// a fix for a typo.
func nearest(key string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(key, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// resolvePaths makes relative paths relative to the config file.
func (c *Config) resolvePaths() {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) && c.dir != "" {
			*p = filepath.Join(c.dir, *p)
		}
	}
	abs(&c.StateDir)
	abs(&c.Llama.LibDir)
	abs(&c.GRPC.Socket)
	abs(&c.GRPC.TLS.Cert)
	abs(&c.GRPC.TLS.Key)
	abs(&c.GRPC.TLS.ClientCA)
	for i := range c.Models {
		abs(&c.Models[i].Path)
	}
	abs(&c.MQTT.Embedded.TLS.Cert)
	abs(&c.MQTT.Embedded.TLS.Key)
	abs(&c.MQTT.Embedded.TLS.ClientCA)
	abs(&c.MQTT.External.TLS.Cert)
	abs(&c.MQTT.External.TLS.Key)
	abs(&c.MQTT.External.CA)
	abs(&c.Uplink.CA)
	abs(&c.Uplink.TLS.Cert)
	abs(&c.Uplink.TLS.Key)
}

// derive fills defaults that depend on other values or on presence.
func (c *Config) derive() {
	c.deriveAuth()
	if c.MQTT.External.ClientID == "" {
		c.MQTT.External.ClientID = "ember-" + c.DeviceID
	}
	if c.Uplink.ClientID == "" {
		c.Uplink.ClientID = c.DeviceID
	}
	for i := range c.Redact {
		if c.Redact[i].Replace == "" {
			c.Redact[i].Replace = "[REDACTED]"
		}
	}
	for i := range c.Pipelines {
		p := &c.Pipelines[i]
		if p.Decode == "" {
			p.Decode = "json"
		}
		if p.Output.Format == "" {
			p.Output.Format = "text"
		}
		if p.Publish.QoS == nil {
			one := 1
			p.Publish.QoS = &one
		}
		if p.Priority == nil {
			mid := 5
			p.Priority = &mid
		}
		if p.Classification == "" {
			p.Classification = "shared"
		}
		if p.DeadLetterPayload == "" {
			p.DeadLetterPayload = "digest"
		}
		if p.Guard == "" {
			p.Guard = "flag"
		}
		if p.Backlog.Overflow == "" {
			p.Backlog.Overflow = "reject"
		}
		if p.Backlog.Max == 0 {
			p.Backlog.Max = 1000
		}
	}
}

// Line returns the line a key was set on, or 0, for messages that point
// into the file (pipelines[2].prompt, say).
func (c *Config) Line(path string) int { return c.lines[path] }

// ParsePipelines reads pipeline definitions on their own, as a list or a
// single mapping, with the same strictness and defaults as in a config
// file (PipelineService.Validate and fleet pipeline bundles use it).
func ParsePipelines(data []byte) ([]Pipeline, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("no pipeline definitions")
	}
	root := doc.Content[0]
	if root.Kind == yaml.MappingNode {
		// Either one pipeline or a document with a pipelines key.
		if len(root.Content) >= 2 && root.Content[0].Value == "pipelines" && len(root.Content) == 2 {
			root = root.Content[1]
		} else {
			root = &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{root}, Line: root.Line}
		}
	}
	c := &Config{lines: map[string]int{}}
	var errs []error
	decodeNode(root, reflect.ValueOf(&c.Pipelines).Elem(), "pipelines", c.lines, &errs)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	c.derive()
	var verrs []error
	c.validatePipelines(func(path, format string, args ...any) {
		msg := fmt.Sprintf("%s: %s", path, fmt.Sprintf(format, args...))
		if line, ok := c.lines[path]; ok {
			msg = fmt.Sprintf("line %d: %s", line, msg)
		}
		verrs = append(verrs, errors.New(msg))
	})
	if len(verrs) > 0 {
		return nil, errors.Join(verrs...)
	}
	return c.Pipelines, nil
}

// Dir is the directory of the config file, which relative paths in it
// (trusted key files, say) are relative to.
func (c *Config) Dir() string { return c.dir }
