package inference

import (
	"sort"
	"strings"
)

// SpecialInData reports the first special-token text (of specials) that
// the joined prompt holds with at least one byte of it from a data
// segment. That covers a control token inside one data segment, one that
// two adjacent data segments spell only together ("<|im_" then "end|>"),
// and one that data completes with the template text around it. Special
// text wholly inside template text is the template's own and is not
// reported.
//
// The engine tokenizes a prompt for which this reports true segment by
// segment, never parsing data for special tokens, so such text stays
// plain text: it is neutralised, not refused.
func SpecialInData(segs []Segment, specials []string) (string, bool) {
	var whole strings.Builder
	// starts and ends of the data spans, in order, as byte offsets into
	// the joined text.
	var spans [][2]int
	for _, s := range segs {
		if s.Data && s.Text != "" {
			at := whole.Len()
			if n := len(spans); n > 0 && spans[n-1][1] == at {
				spans[n-1][1] = at + len(s.Text)
			} else {
				spans = append(spans, [2]int{at, at + len(s.Text)})
			}
		}
		whole.WriteString(s.Text)
	}
	if len(spans) == 0 {
		return "", false
	}
	text := whole.String()
	for _, sp := range specials {
		if sp == "" {
			continue
		}
		for from := 0; ; {
			i := strings.Index(text[from:], sp)
			if i < 0 {
				break
			}
			start := from + i
			if overlaps(spans, start, start+len(sp)) {
				return sp, true
			}
			from = start + 1
		}
	}
	return "", false
}

// overlaps reports whether [start, end) shares a byte with a span.
func overlaps(spans [][2]int, start, end int) bool {
	// The first span ending after start is the only candidate.
	k := sort.Search(len(spans), func(k int) bool { return spans[k][1] > start })
	return k < len(spans) && spans[k][0] < end
}
