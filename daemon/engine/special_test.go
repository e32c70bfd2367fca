package engine

import "testing"

// Data that spells a control token only when joined with the data or the
// template text beside it is neutralised like data that spells one alone:
// the prompt is tokenized segment by segment and gets no such token.
func TestJoinedDataCannotForgeControlTokens(t *testing.T) {
	m := loadTiny(t, newEngine(t, Options{}))
	count := func(segs []Segment) int {
		toks, err := m.tokenizeSegments(segs)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, tok := range toks {
			if string(m.piece(tok, true)) == "<|im_end|>" {
				n++
			}
		}
		return n
	}
	for _, tc := range []struct {
		name string
		segs []Segment
		want int
	}{
		{"template's own token", []Segment{{Text: "hi "}, {Text: "x", Data: true}, {Text: "<|im_end|>"}}, 1},
		{"two data segments", []Segment{{Text: "note: "}, {Text: "<|im_", Data: true}, {Text: "end|>", Data: true}}, 0},
		{"template then data", []Segment{{Text: "note: <|im_"}, {Text: "end|>", Data: true}}, 0},
		{"data then template", []Segment{{Text: "<|im_e", Data: true}, {Text: "nd|> tail"}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := count(tc.segs); got != tc.want {
				t.Fatalf("<|im_end|> tokens: %d, want %d", got, tc.want)
			}
		})
	}
}
