package fleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/ember-edge/ember/internal/bytesize"
	"go.yaml.in/yaml/v3"
)

// ParseManifestYAML reads the YAML an operator writes (FORMAT.md,
// "Manifest") strictly: unknown keys, duplicate keys and ill-typed values
// are errors, and so is every broken rule of Validate. All problems are
// reported at once, each with its line: "line 7: artifacts[0].sha256: want
// 64 lower-case hex digits". The error matches ErrMalformed.
func ParseManifestYAML(data []byte) (*Manifest, error) {
	return ParseManifestYAMLScoped(data, Scope{})
}

// Scope fills a manifest's scope fields that its YAML leaves out, as
// `emberctl fleet sign --fleet --device --valid-for --min-version` does.
// A field both set in the YAML and given here differently is an error.
type Scope struct {
	Fleet      string
	Devices    []string
	NotAfter   time.Time
	MinVersion int64
}

// ParseManifestYAMLScoped is ParseManifestYAML with the scope fields the
// YAML lacks taken from s before the rules are checked.
func ParseManifestYAMLScoped(data []byte, s Scope) (*Manifest, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: not valid YAML: %w", ErrMalformed, err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%w: empty document", ErrMalformed)
	}
	m := &Manifest{}
	d := yamlDecoder{lines: map[string]int{}}
	d.decode(doc.Content[0], reflect.ValueOf(m).Elem(), "")
	if len(d.errs) > 0 {
		return nil, &lineErrors{d.errs}
	}
	if err := s.fill(m, d.line); err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		var ve *ValidationError
		if !errors.As(err, &ve) {
			return nil, err
		}
		errs := make([]string, len(ve.Fields))
		for i, f := range ve.Fields {
			errs[i] = fmt.Sprintf("line %d: %s", d.line(f.Path), f.Error())
		}
		return nil, &lineErrors{errs}
	}
	return m, nil
}

// fill sets what m leaves out from s, refusing a disagreement.
func (s Scope) fill(m *Manifest, line func(string) int) error {
	var errs []string
	conflict := func(field, yamlV, flagV string) {
		errs = append(errs, fmt.Sprintf("line %d: %s: the manifest says %s, the command line %s", line(field), field, yamlV, flagV))
	}
	switch {
	case s.Fleet == "":
	case m.Fleet == "":
		m.Fleet = s.Fleet
	case m.Fleet != s.Fleet:
		conflict("fleet", strconvQuote(m.Fleet), strconvQuote(s.Fleet))
	}
	switch {
	case len(s.Devices) == 0:
	case len(m.Devices) == 0:
		m.Devices = s.Devices
	default:
		conflict("devices", strings.Join(m.Devices, ","), strings.Join(s.Devices, ","))
	}
	switch {
	case s.NotAfter.IsZero():
	case m.NotAfter.IsZero():
		m.NotAfter = Timestamp{s.NotAfter}
	}
	switch {
	case s.MinVersion == 0:
	case m.MinVersion == 0:
		m.MinVersion = s.MinVersion
	case m.MinVersion != s.MinVersion:
		conflict("min_version", fmt.Sprint(m.MinVersion), fmt.Sprint(s.MinVersion))
	}
	if len(errs) > 0 {
		return &lineErrors{errs}
	}
	return nil
}

func strconvQuote(s string) string { return fmt.Sprintf("%q", s) }

// lineErrors lists YAML problems, one per line of the message.
type lineErrors struct{ msgs []string }

func (e *lineErrors) Error() string {
	return ErrMalformed.Error() + ":\n  " + strings.Join(e.msgs, "\n  ")
}

func (e *lineErrors) Is(target error) bool { return target == ErrMalformed }

type yamlDecoder struct {
	lines map[string]int
	errs  []string
}

// line returns the line of path, or of its closest parent that has one.
func (d *yamlDecoder) line(path string) int {
	for p := path; p != ""; {
		if l, ok := d.lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return d.lines[""]
}

var (
	bytesType    = reflect.TypeFor[Bytes]()
	durationType = reflect.TypeFor[Duration]()
	rawJSONType  = reflect.TypeFor[RawJSON]()
	stringsType  = reflect.TypeFor[Strings]()
	timeType     = reflect.TypeFor[Timestamp]()
)

func (d *yamlDecoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	d.lines[path] = n.Line
	fail := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if path != "" {
			msg = path + ": " + msg
		}
		d.errs = append(d.errs, fmt.Sprintf("line %d: %s", n.Line, msg))
	}
	isNull := n.Kind == yaml.ScalarNode && n.Tag == "!!null"
	if d.special(n, v, isNull, fail) {
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		if isNull {
			return
		}
		if n.Kind != yaml.MappingNode {
			fail("want a mapping of keys, got %s", describeNode(n))
			return
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			sub := key.Value
			if path != "" {
				sub = path + "." + key.Value
			}
			if seen[key.Value] {
				d.errs = append(d.errs, fmt.Sprintf("line %d: duplicate key %q", key.Line, sub))
				continue
			}
			seen[key.Value] = true
			field, ok := fieldByYAMLKey(v, key.Value)
			if !ok {
				d.errs = append(d.errs, fmt.Sprintf("line %d: unknown key %q (known: %s)", key.Line, sub, strings.Join(yamlKeys(v.Type()), ", ")))
				continue
			}
			d.decode(val, field, sub)
		}
	case reflect.Slice:
		if isNull {
			return
		}
		if n.Kind != yaml.SequenceNode {
			fail("want a list, got %s", describeNode(n))
			return
		}
		out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, out.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(out)
	default:
		if n.Kind != yaml.ScalarNode {
			fail("want a single value, got %s", describeNode(n))
			return
		}
		if v.Kind() == reflect.String && n.Tag != "!!str" && !isNull {
			// A bare 1.0 or true where text belongs is almost always a
			// mistake; a quoted string is explicit.
			fail("want text, got %s (quote it)", describeNode(n))
			return
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			fail("want %s, got %s", kindWord(v.Kind()), describeNode(n))
		}
	}
}

// special decodes the types whose YAML differs from their JSON: sizes
// with units, durations, JSON Schemas written as YAML, and a single
// string for a list. It reports whether it handled v.
func (d *yamlDecoder) special(n *yaml.Node, v reflect.Value, isNull bool, fail func(string, ...any)) bool {
	switch v.Type() {
	case bytesType:
		if n.Kind != yaml.ScalarNode {
			fail("want a size like 6GiB, got %s", describeNode(n))
			return true
		}
		b, err := bytesize.Parse(n.Value)
		if err != nil {
			fail("%v", err)
			return true
		}
		if b > maxSafeInteger {
			// The manifest is signed as canonical JSON, whose integers
			// stop at 2^53-1.
			fail("%q is more than 2^53-1 bytes", n.Value)
			return true
		}
		v.SetInt(int64(b))
	case durationType:
		if n.Kind != yaml.ScalarNode {
			fail("want a duration like 750ms, got %s", describeNode(n))
			return true
		}
		t, err := time.ParseDuration(n.Value)
		if err != nil {
			fail("want a duration like 750ms or 2s, got %q", n.Value)
			return true
		}
		v.SetInt(int64(t))
	case rawJSONType:
		if isNull {
			return true
		}
		var x any
		if err := n.Decode(&x); err != nil {
			fail("%v", err)
			return true
		}
		b, err := json.Marshal(jsonable(x))
		if err != nil {
			fail("cannot be written as JSON: %v", err)
			return true
		}
		v.SetBytes(b)
	case timeType:
		if isNull {
			return true
		}
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!timestamp" && n.Tag != "!!str") {
			fail("want a time like 2026-04-01T00:00:00Z, got %s", describeNode(n))
			return true
		}
		t, err := parseTimestamp(n.Value)
		if err != nil {
			fail("%v", err)
			return true
		}
		v.Set(reflect.ValueOf(Timestamp{t}))
	case stringsType:
		if n.Kind != yaml.ScalarNode || isNull {
			return false // a list: the general case
		}
		v.Set(reflect.ValueOf(Strings{n.Value}))
	default:
		return false
	}
	return true
}

func fieldByYAMLKey(v reflect.Value, key string) (reflect.Value, bool) {
	t := v.Type()
	for i := range t.NumField() {
		if t.Field(i).Tag.Get("yaml") == key {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

func yamlKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		keys = append(keys, t.Field(i).Tag.Get("yaml"))
	}
	sort.Strings(keys)
	return keys
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}

func kindWord(k reflect.Kind) string {
	switch k {
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Float64:
		return "a number"
	case reflect.String:
		return "text"
	case reflect.Bool:
		return "true or false"
	}
	return k.String()
}

// jsonable turns what yaml.v3 decodes into any (maps with any keys) into
// values encoding/json accepts.
func jsonable(x any) any {
	switch t := x.(type) {
	case map[string]any:
		for k, v := range t {
			t[k] = jsonable(v)
		}
		return t
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, v := range t {
			out[fmt.Sprint(k)] = jsonable(v)
		}
		return out
	case []any:
		for i, v := range t {
			t[i] = jsonable(v)
		}
		return t
	}
	return x
}
