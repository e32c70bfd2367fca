package pipeline

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"text/template"

	"github.com/ember-edge/ember/daemon/inference"
	"github.com/ember-edge/ember/daemon/topic"
)

// Data values render between these markers, so that the rendered text can
// be split into template text and data segments. JSON quoting escapes
// control characters, and raw values have these stripped, so a payload
// cannot forge a marker.
const (
	markOpen  = "\x02"
	markClose = "\x03"
)

// Values from a payload are wrapped in these types while a template runs.
// Their String methods decide how a bare {{.x}} renders; their underlying
// kinds keep comparisons (eq, lt, …) and field access working.
type (
	dataString string
	dataNumber float64
	dataMap    map[string]any
	dataList   []any
)

func (s dataString) String() string { return markOpen + quoteJSON(string(s)) + markClose }

func (n dataNumber) String() string { return markOpen + formatNumber(float64(n)) + markClose }

func (m dataMap) String() string { return markOpen + mustJSON(unwrap(map[string]any(m))) + markClose }

func (l dataList) String() string { return markOpen + mustJSON(unwrap([]any(l))) + markClose }

// wrap marks every leaf of v as data.
func wrap(v any) any {
	switch x := v.(type) {
	case string:
		return dataString(x)
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return dataString(x.String())
		}
		return dataNumber(f)
	case float64:
		return dataNumber(x)
	case float32:
		return dataNumber(x)
	case int:
		return dataNumber(x)
	case int64:
		return dataNumber(x)
	case uint64:
		return dataNumber(x)
	case map[string]any:
		m := make(dataMap, len(x))
		for k, e := range x {
			m[k] = wrap(e)
		}
		return m
	case []any:
		l := make(dataList, len(x))
		for i, e := range x {
			l[i] = wrap(e)
		}
		return l
	case nil, bool:
		return x
	default:
		return dataString(fmt.Sprint(x))
	}
}

// unwrap undoes wrap, for json and raw.
func unwrap(v any) any {
	switch x := v.(type) {
	case dataString:
		return string(x)
	case dataNumber:
		return float64(x)
	case dataMap:
		return unwrap(map[string]any(x))
	case dataList:
		return unwrap([]any(x))
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = unwrap(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = unwrap(e)
		}
		return l
	}
	return v
}

func quoteJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return quoteJSON(fmt.Sprint(v))
	}
	return string(b)
}

func formatNumber(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// renderCtx is what the template functions see of the message.
type renderCtx struct {
	topic string
	meta  map[string]any
}

// funcs are the template functions. They close over a per-message
// context, so a template is parsed once with placeholders and cloned with
// the real ones per message.
func funcs(rc *renderCtx) template.FuncMap {
	return template.FuncMap{
		// raw inserts a value without quotes (still as data).
		"raw": func(v any) string {
			var s string
			if str, ok := unwrap(v).(string); ok {
				s = str
			} else {
				s = mustJSON(unwrap(v))
			}
			s = strings.NewReplacer(markOpen, "", markClose, "").Replace(s)
			return markOpen + s + markClose
		},
		// json renders any value, or the whole input, as JSON.
		"json": func(v any) string { return markOpen + mustJSON(unwrap(v)) + markClose },
		// topic is the message's topic; level i is its i-th level (0 first).
		"topic": func() string { return rc.topic },
		"level": func(i int) string {
			levels := topic.Levels(rc.topic)
			if i < 0 || i >= len(levels) {
				return ""
			}
			return levels[i]
		},
		// meta describes the message: for Sparkplug B, its type, group,
		// edge_node, device and timestamp.
		"meta": func(key string) any { return wrap(rc.meta[key]) },
		"default": func(def, v any) any {
			if v == nil || v == dataString("") {
				return def
			}
			return v
		},
		"upper": func(v any) string { return strings.ToUpper(fmt.Sprint(unwrap(v))) },
		"lower": func(v any) string { return strings.ToLower(fmt.Sprint(unwrap(v))) },
		"round": func(places int, v any) string {
			f, ok := unwrap(v).(float64)
			if !ok {
				return fmt.Sprint(unwrap(v))
			}
			return markOpen + strconv.FormatFloat(f, 'f', max(places, 0), 64) + markClose
		},
	}
}

// parseTemplate parses a prompt template once, with the functions bound
// to a context filled per message.
func parseTemplate(name, text string) (*template.Template, *renderCtx, error) {
	rc := &renderCtx{}
	t, err := template.New(name).Option("missingkey=error").Funcs(funcs(rc)).Parse(text)
	return t, rc, err
}

// segments splits rendered text into template text and data segments.
func segments(rendered string) []inference.Segment {
	var out []inference.Segment
	for rendered != "" {
		before, rest, found := strings.Cut(rendered, markOpen)
		if before != "" {
			out = append(out, inference.Segment{Text: before})
		}
		if !found {
			break
		}
		data, after, _ := strings.Cut(rest, markClose)
		if data != "" {
			out = append(out, inference.Segment{Text: data, Data: true})
		}
		rendered = after
	}
	return out
}

// plain joins segments back into text.
func plain(segs []inference.Segment) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteString(s.Text)
	}
	return b.String()
}
