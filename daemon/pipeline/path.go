package pipeline

import (
	"fmt"
	"strconv"
	"strings"
)

// path is a field path into decoded JSON: a.b[0].c, optionally starting
// with "$." as in JSONPath.
type path []step

type step struct {
	key   string
	index int
	isIdx bool
}

func parsePath(expr string) (path, error) {
	s := strings.TrimPrefix(strings.TrimPrefix(expr, "$"), ".")
	if s == "" {
		if expr == "$" {
			return path{}, nil
		}
		return nil, fmt.Errorf("path %q is empty", expr)
	}
	var p path
	for s != "" {
		if s[0] == '[' {
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return nil, fmt.Errorf("path %q: missing ']'", expr)
			}
			i, err := strconv.Atoi(s[1:end])
			if err != nil || i < 0 {
				return nil, fmt.Errorf("path %q: index %q is not a non-negative integer", expr, s[1:end])
			}
			p = append(p, step{index: i, isIdx: true})
			s = strings.TrimPrefix(s[end+1:], ".")
			continue
		}
		end := strings.IndexAny(s, ".[")
		if end < 0 {
			end = len(s)
		}
		if end == 0 {
			return nil, fmt.Errorf("path %q: empty name", expr)
		}
		p = append(p, step{key: s[:end]})
		s = strings.TrimPrefix(s[end:], ".")
	}
	return p, nil
}

func (p path) lookup(v any) (any, error) {
	for _, st := range p {
		if st.isIdx {
			list, ok := v.([]any)
			if !ok {
				return nil, fmt.Errorf("[%d]: not a list", st.index)
			}
			if st.index >= len(list) {
				return nil, fmt.Errorf("[%d]: the list has %d items", st.index, len(list))
			}
			v = list[st.index]
			continue
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%q: not an object", st.key)
		}
		if v, ok = m[st.key]; !ok {
			return nil, fmt.Errorf("%q is missing", st.key)
		}
	}
	return v, nil
}
