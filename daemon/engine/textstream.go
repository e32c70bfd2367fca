package engine

import (
	"strings"
	"unicode/utf8"
)

// textStream turns the byte pieces of generated tokens into text that is
// safe to send: whole UTF-8 characters only (a token can end inside a
// multibyte character), invalid bytes replaced with U+FFFD, and any text
// that might be the start of a stop string held back until it is known not
// to be one, so that a stop string is never emitted, not even in part.
type textStream struct {
	stops   []string
	pending []byte // an incomplete UTF-8 sequence at the end of the output
	held    string // text that may be the start of a stop string
}

func newTextStream(stops []string) *textStream {
	ts := &textStream{}
	for _, s := range stops {
		if s != "" {
			ts.stops = append(ts.stops, s)
		}
	}
	return ts
}

// push adds a piece and returns the text that can be emitted now. When a
// stop string appears, stopped is true, stop is the string, and out is the
// text before it; the stream must then not be used again.
func (ts *textStream) push(piece []byte) (out string, stop string, stopped bool) {
	ts.pending = append(ts.pending, piece...)
	n := completePrefix(ts.pending)
	text := ts.held + strings.ToValidUTF8(string(ts.pending[:n]), "\uFFFD")
	ts.pending = append(ts.pending[:0], ts.pending[n:]...)
	ts.held = ""

	if i, s := firstStop(text, ts.stops); i >= 0 {
		return text[:i], s, true
	}
	k := heldSuffix(text, ts.stops)
	ts.held = text[len(text)-k:]
	return text[:len(text)-k], "", false
}

// flush returns what is left at the end of generation, cut at a stop
// string that the replacement of trailing bytes may have completed.
func (ts *textStream) flush() string {
	out := ts.held + strings.ToValidUTF8(string(ts.pending), "\uFFFD")
	ts.held, ts.pending = "", nil
	if i, _ := firstStop(out, ts.stops); i >= 0 {
		return out[:i]
	}
	return out
}

// completePrefix returns the length of b without a trailing incomplete
// UTF-8 sequence: one that the next bytes could still complete.
func completePrefix(b []byte) int {
	for back := 1; back <= utf8.UTFMax-1 && back <= len(b); back++ {
		c := b[len(b)-back]
		if c&0xC0 == 0x80 { // continuation byte: keep looking for the lead
			continue
		}
		if want := seqLen(c); want > back {
			return len(b) - back
		}
		return len(b)
	}
	return len(b)
}

// seqLen is the length of the UTF-8 sequence that lead byte c starts, or 1
// for a byte that cannot start one (it is then invalid on its own).
func seqLen(c byte) int {
	switch {
	case c&0xE0 == 0xC0:
		return 2
	case c&0xF0 == 0xE0:
		return 3
	case c&0xF8 == 0xF0:
		return 4
	}
	return 1
}

// firstStop finds the earliest stop string in text.
func firstStop(text string, stops []string) (int, string) {
	best, which := -1, ""
	for _, s := range stops {
		if i := strings.Index(text, s); i >= 0 && (best < 0 || i < best) {
			best, which = i, s
		}
	}
	return best, which
}

// heldSuffix returns the length of the longest suffix of text that is a
// proper prefix of a stop string.
func heldSuffix(text string, stops []string) int {
	longest := 0
	for _, s := range stops {
		for k := min(len(s)-1, len(text)); k > longest; k-- {
			if strings.HasSuffix(text, s[:k]) {
				longest = k
				break
			}
		}
	}
	return longest
}
