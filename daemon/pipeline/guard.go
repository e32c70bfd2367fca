package pipeline

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/ember-edge/ember/daemon/inference"
	"github.com/ember-edge/ember/daemon/pipeline/guard"
)

// guardTexts is what the guard scans of a message: the topic, every key
// and string of the fields on its own, and the data of the rendered
// prompt and system message joined in the order the model reads it
// (once with spaces, once without), so that a phrase or a control token
// split across fields is seen whole.
func guardTexts(msgTopic string, fields map[string]any, prompt, system []inference.Segment) []guard.Text {
	texts := []guard.Text{{Where: "topic", Text: msgTopic}}
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch x := v.(type) {
		case string:
			texts = append(texts, guard.Text{Where: where, Text: x})
		case map[string]any:
			for _, k := range sortedKeys(x) {
				texts = append(texts, guard.Text{Where: join(where, k), Text: k})
				walk(join(where, k), x[k])
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", where, i), e)
			}
		}
	}
	walk("", fields)
	var parts []string
	for _, segs := range [][]inference.Segment{system, prompt} {
		for _, s := range segs {
			if s.Data {
				parts = append(parts, dataStrings(s.Text)...)
			}
		}
	}
	if len(parts) > 1 {
		texts = append(texts,
			guard.Text{Where: "prompt", Text: strings.Join(parts, " "), Joined: true},
			guard.Text{Where: "prompt", Text: strings.Join(parts, ""), Joined: true})
	}
	return texts
}

// dataStrings returns the strings a data segment holds: a JSON value's
// keys and strings, in order (a quoted value would hide "<" as \u003c
// from the guard), or the segment's text as it is.
func dataStrings(text string) []string {
	// Most data is a plain quoted string or a number: no decoding needed.
	if n := len(text); n >= 2 && text[0] == '"' && text[n-1] == '"' && !strings.ContainsAny(text[1:n-1], "\\\"") {
		return []string{text[1 : n-1]}
	}
	if n := len(text); n > 0 && (text[0] == '-' || text[0] >= '0' && text[0] <= '9') && strings.Trim(text, "0123456789.eE+-") == "" {
		return nil // a number holds no words
	}
	var v any
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		return []string{text}
	}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			out = append(out, x)
		case map[string]any:
			for _, k := range sortedKeys(x) {
				out = append(out, k)
				walk(x[k])
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return out
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func join(where, key string) string {
	if where == "" {
		return key
	}
	return where + "." + key
}
