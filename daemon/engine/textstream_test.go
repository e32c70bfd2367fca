package engine

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// feed pushes pieces one by one and returns what was emitted per push, the
// flushed rest, and the stop string if one matched.
func feed(stops []string, pieces ...string) (outs []string, rest, stop string) {
	ts := newTextStream(stops)
	for _, p := range pieces {
		out, s, stopped := ts.push([]byte(p))
		outs = append(outs, out)
		if stopped {
			return outs, "", s
		}
	}
	return outs, ts.flush(), ""
}

func TestTextStreamNeverSplitsACharacter(t *testing.T) {
	euro := "€" // three bytes: E2 82 AC
	outs, rest, _ := feed(nil, "price ", euro[:1], euro[1:2], euro[2:]+"5")
	want := []string{"price ", "", "", "€5"}
	if strings.Join(outs, "|") != strings.Join(want, "|") || rest != "" {
		t.Fatalf("outs = %q rest %q; want %q", outs, rest, want)
	}
	for _, o := range outs {
		if !utf8.ValidString(o) {
			t.Errorf("emitted invalid UTF-8 %q", o)
		}
	}
}

func TestTextStreamReplacesInvalidBytes(t *testing.T) {
	outs, rest, _ := feed(nil, "a\xff", "b", "\xe2\x82") // a stray byte, then a truncated euro at the end
	got := strings.Join(outs, "") + rest
	if got != "a\uFFFDb\uFFFD" {
		t.Fatalf("got %q", got)
	}
	// A lead byte followed by a non-continuation byte is invalid at once.
	outs, rest, _ = feed(nil, "\xe2", "x")
	if got := strings.Join(outs, "") + rest; got != "\uFFFDx" {
		t.Fatalf("got %q", got)
	}
}

func TestTextStreamStopStrings(t *testing.T) {
	tests := []struct {
		name     string
		stops    []string
		pieces   []string
		wantText string
		wantStop string
	}{
		{"stop inside one piece", []string{"END"}, []string{"abc END def"}, "abc ", "END"},
		{"stop across pieces", []string{"END"}, []string{"abc E", "N", "D more"}, "abc ", "END"},
		{"false start is released", []string{"END"}, []string{"abc E", "NX"}, "abc ENX", ""},
		{"earliest of several", []string{"zz", "b"}, []string{"a", "bzz"}, "a", "b"},
		{"stop at start", []string{"\n\n"}, []string{"\n", "\nrest"}, "", "\n\n"},
		{"no stops", nil, []string{"a", "b"}, "ab", ""},
		{"empty stop ignored", []string{""}, []string{"a"}, "a", ""},
		{"multibyte stop", []string{"→"}, []string{"x", "→"[:2], "→"[2:] + "y"}, "x", "→"},
		{"held text flushed at end", []string{"STOP"}, []string{"go ST"}, "go ST", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outs, rest, stop := feed(tt.stops, tt.pieces...)
			if got := strings.Join(outs, "") + rest; got != tt.wantText || stop != tt.wantStop {
				t.Fatalf("text %q stop %q; want %q stop %q", got, stop, tt.wantText, tt.wantStop)
			}
		})
	}
}

func TestTextStreamHoldsOnlyWhatCouldStop(t *testing.T) {
	ts := newTextStream([]string{"</answer>"})
	out, _, _ := ts.push([]byte("result: 42 </ans"))
	if out != "result: 42 " {
		t.Fatalf("emitted %q; want the text before the possible stop", out)
	}
}

func FuzzTextStream(f *testing.F) {
	f.Add([]byte("hello €"), []byte("wor\xffld"), "ld")
	f.Add([]byte("\xe2\x82"), []byte("\xac"), "€")
	f.Fuzz(func(t *testing.T, a, b []byte, stop string) {
		if !utf8.ValidString(stop) {
			return
		}
		ts := newTextStream([]string{stop})
		var all strings.Builder
		for _, p := range [][]byte{a, b} {
			out, _, stopped := ts.push(p)
			if !utf8.ValidString(out) {
				t.Fatalf("invalid UTF-8 emitted: %q", out)
			}
			all.WriteString(out)
			if stopped {
				return
			}
		}
		rest := ts.flush()
		if !utf8.ValidString(rest) {
			t.Fatalf("invalid UTF-8 flushed: %q", rest)
		}
		all.WriteString(rest)
		if stop != "" && strings.Contains(all.String(), stop) {
			t.Fatalf("stop %q emitted in %q", stop, all.String())
		}
	})
}
