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
	case dataText:
		return string(x)
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

// dataText is the output of a template function that derives from the
// payload or the topic: data, like the values it came from, but rendered
// bare (without JSON quotes). Its marker bytes are dropped, so it cannot
// close its data span early.
type dataText string

func (s dataText) String() string { return markOpen + stripMarks(string(s)) + markClose }

var markStripper = strings.NewReplacer(markOpen, "", markClose, "")

func stripMarks(s string) string { return markStripper.Replace(s) }

// isData reports whether v came from the message.
func isData(v any) bool {
	switch v.(type) {
	case dataString, dataNumber, dataMap, dataList, dataText:
		return true
	}
	return false
}

// anyData reports whether any of args came from the message.
func anyData(args []any) bool {
	for _, a := range args {
		if isData(a) {
			return true
		}
	}
	return false
}

// bare is a value's text without quotes: a string as is, a number in its
// short form, anything else as JSON.
func bare(v any) string {
	switch x := unwrap(v).(type) {
	case string:
		return x
	case float64:
		return formatNumber(x)
	default:
		return mustJSON(x)
	}
}

// shown is what fmt sees of an argument: data as it renders bare of its
// markers (a string quoted, a number as a number), anything else as is.
func shown(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		switch x := a.(type) {
		case dataNumber:
			out[i] = float64(x)
		case dataString, dataMap, dataList, dataText:
			out[i] = stripMarks(fmt.Sprint(x))
		default:
			out[i] = a
		}
	}
	return out
}

// derived returns s as data when any of args came from the message, else
// as the template's own text.
func derived(s string, args ...any) any {
	if anyData(args) {
		return dataText(s)
	}
	return s
}

// funcs are the template functions. They close over a per-message
// context, so a template is parsed once with placeholders and cloned with
// the real ones per message.
//
// Whatever a function returns that derives from the payload or the topic
// is data (dataText or a wrapped value), never template text: the
// formatting built-ins (print, printf, println, html, js, urlquery) are
// replaced by versions that keep it so, since fmt and the escapers would
// otherwise rewrite the data markers into plain text.
func funcs(rc *renderCtx) template.FuncMap {
	return template.FuncMap{
		// raw inserts a value without quotes (still as data).
		"raw": func(v any) dataText { return dataText(bare(v)) },
		// json renders any value, or the whole input, as JSON.
		"json": func(v any) dataText { return dataText(mustJSON(unwrap(v))) },
		// topic is the message's topic; level i is its i-th level (0 first).
		"topic": func() dataText { return dataText(rc.topic) },
		"level": func(i int) dataText {
			levels := topic.Levels(rc.topic)
			if i < 0 || i >= len(levels) {
				return ""
			}
			return dataText(levels[i])
		},
		// meta describes the message: for Sparkplug B, its type, group,
		// edge_node, device and timestamp.
		"meta": func(key string) any { return wrap(rc.meta[key]) },
		"default": func(def, v any) any {
			if v == nil || v == dataString("") || v == dataText("") {
				return def
			}
			return v
		},
		"upper": func(v any) any { return derived(strings.ToUpper(bare(v)), v) },
		"lower": func(v any) any { return derived(strings.ToLower(bare(v)), v) },
		"round": func(places int, v any) any {
			f, ok := unwrap(v).(float64)
			if !ok {
				return derived(bare(v), v)
			}
			return derived(strconv.FormatFloat(f, 'f', max(places, 0), 64), v)
		},
		"print":   func(args ...any) any { return derived(fmt.Sprint(shown(args)...), args...) },
		"println": func(args ...any) any { return derived(fmt.Sprintln(shown(args)...), args...) },
		"printf": func(format any, args ...any) any {
			s := fmt.Sprintf(stripMarks(fmt.Sprint(shown([]any{format})...)), shown(args)...)
			return derived(s, append(args, format)...)
		},
		"html":     func(args ...any) any { return derived(template.HTMLEscaper(shown(args)...), args...) },
		"js":       func(args ...any) any { return derived(template.JSEscaper(shown(args)...), args...) },
		"urlquery": func(args ...any) any { return derived(template.URLQueryEscaper(shown(args)...), args...) },
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
