package redact

import (
	"errors"
	"strconv"
	"strings"
)

// step is one element of a Field rule's path: a key (or any key), or an
// array index (or any index).
type step struct {
	key      string
	anyKey   bool
	index    int // -1: this step is a key
	anyIndex bool
}

// pathElem is where the walker is: an object key (index -1) or an array
// index.
type pathElem struct {
	key   string
	index int
}

// parsePath parses a path such as input.operator,
// output.readings[0].serial, output.readings[*].serial or *.password. A
// key that holds a dot, a bracket or a star cannot be named.
func parsePath(p string) ([]step, error) {
	if p == "" {
		return nil, errors.New("empty path")
	}
	var out []step
	for _, part := range strings.Split(p, ".") {
		name, rest, _ := strings.Cut(part, "[")
		if name == "" {
			return nil, errors.New("empty key (a path is keys separated by dots, with [N] or [*] for arrays)")
		}
		out = append(out, step{key: name, anyKey: name == "*", index: -1})
		if rest == "" {
			if strings.Contains(part, "[") {
				return nil, errors.New("unclosed [")
			}
			continue
		}
		rest = "[" + rest
		for rest != "" {
			if rest[0] != '[' {
				return nil, errors.New("text after ] (want . or [)")
			}
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, errors.New("unclosed [")
			}
			idx := rest[1:end]
			rest = rest[end+1:]
			if idx == "*" {
				out = append(out, step{anyIndex: true})
				continue
			}
			n, err := strconv.Atoi(idx)
			if err != nil || n < 0 {
				return nil, errors.New("array index " + strconv.Quote(idx) + " is not a number ≥ 0 or *")
			}
			out = append(out, step{index: n})
		}
	}
	return out, nil
}

func (s step) matches(e pathElem) bool {
	if s.index < 0 && !s.anyIndex { // a key step
		return e.index < 0 && (s.anyKey || s.key == e.key)
	}
	return e.index >= 0 && (s.anyIndex || s.index == e.index)
}

// fieldMatch returns the replacement when the walker's path matches a
// Field rule.
func (w *walker) fieldMatch() ([]byte, bool) {
	if len(w.path) == 0 {
		return nil, false
	}
rules:
	for _, f := range w.r.fields {
		if len(f.path) != len(w.path) {
			continue
		}
		for i, s := range f.path {
			if !s.matches(w.path[i]) {
				continue rules
			}
		}
		return f.replace, true
	}
	return nil, false
}
