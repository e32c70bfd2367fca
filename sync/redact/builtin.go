package redact

import (
	"regexp"
	"strings"
)

// A matcher finds the byte ranges of a string value to replace.
type matcher interface {
	// find returns the [start, end) ranges to replace, in order and not
	// overlapping.
	find(s string) [][2]int
}

// regexMatcher replaces every match of re, or only its group'th
// submatch when group > 0; keep, when set, vets each candidate.
type regexMatcher struct {
	re    *regexp.Regexp
	group int
	keep  func(string) bool
}

func (m regexMatcher) find(s string) [][2]int {
	var out [][2]int
	for _, loc := range m.re.FindAllStringSubmatchIndex(s, -1) {
		a, b := loc[2*m.group], loc[2*m.group+1]
		if a < 0 || a == b {
			continue
		}
		if m.keep != nil && !m.keep(s[a:b]) {
			continue
		}
		out = append(out, [2]int{a, b})
	}
	return out
}

// multiMatcher is the union of matchers, merged in order.
type multiMatcher []matcher

func (mm multiMatcher) find(s string) [][2]int {
	var all [][2]int
	for _, m := range mm {
		all = append(all, m.find(s)...)
	}
	return mergeRanges(all)
}

// mergeRanges sorts ranges and joins those that overlap.
func mergeRanges(r [][2]int) [][2]int {
	if len(r) < 2 {
		return r
	}
	for i := 1; i < len(r); i++ { // insertion sort: lists are short
		for j := i; j > 0 && r[j][0] < r[j-1][0]; j-- {
			r[j], r[j-1] = r[j-1], r[j]
		}
	}
	out := r[:1]
	for _, x := range r[1:] {
		last := &out[len(out)-1]
		if x[0] <= last[1] {
			last[1] = max(last[1], x[1])
			continue
		}
		out = append(out, x)
	}
	return out
}

// Builtins are the names a Rule's Builtin may take.
var Builtins = []string{"email", "phone", "ipv4", "serial"}

// The builtin patterns. Each is documented by its positive and negative
// examples in builtin_test.go; the aim is to catch what a technician or
// a sensor writes into free text without eating dates, times, versions,
// readings or hashes.
var (
	// emailRE: a local part, @, and a dotted domain ending in a TLD of
	// letters. user@localhost is not an address that leaves a plant.
	emailRE = regexp.MustCompile(`(?i)[a-z0-9!#$%&'*+/=?^_{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_{|}~-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}\b`)

	// phoneRE: an international number (+ and a country code, then
	// digits in groups), or a grouped national number of 3-3-4 digits
	// ((202) 555-0173, 202-555-0173, 202.555.0173) or with a trunk 0
	// (030 1234567, 0171-1234567). Bare runs of digits, and 3-3-4 groups
	// separated by spaces only, are not phone numbers here: they are
	// readings, counters and timestamps.
	phoneRE = regexp.MustCompile(`(?:^|[^\w+.-])(\+\d{1,3}(?:[ .-]?\(?\d{1,5}\)?){1,5}[ .-]?\d{2,}|\(\d{3}\) ?\d{3}[ .-]\d{4}|\d{3}[.-]\d{3}[.-]\d{4}|0\d{2,5}[ /-]\d{3,9})(?:$|[^\w.-]|[.-]\D|[.-]$)`)

	// ipv4Candidate: dotted runs of digits; vetted by isIPv4 so that
	// 1.2.3.4.5 (a version) and 256.1.1.1 are left alone.
	ipv4Candidate = regexp.MustCompile(`(?:^|[^\w.])(\d{1,3}(?:\.\d{1,3}){3})(?:$|[^\w.]|\.(?:$|\D))`)

	// serialLabelled: a value introduced by a serial label (S/N, SN,
	// serial, serial no., serial number, serial#) and a separator: the
	// value is replaced, the label kept. It must hold a digit (hasDigit),
	// so "serial port" keeps its "port".
	serialLabelled = regexp.MustCompile(`(?i)\b(?:s/n|sn|serial(?:[ _-]?(?:no\.?|num(?:ber)?|#))?)(?:\s*[:#=]\s*|\s+)([a-z0-9][a-z0-9./_-]{2,}[a-z0-9])`)

	// serialGlued: SN or S/N glued to a value that starts with a digit
	// (SN4711-A); "snapshot42" is not one.
	serialGlued = regexp.MustCompile(`(?i)\bs/?n(\d[a-z0-9./_-]{1,}[a-z0-9])`)

	// serialShape: upper-case tokens of letters, digits and dashes that
	// look like a serial number by shape (vetted by isSerialShape).
	serialShape = regexp.MustCompile(`(?:^|[^A-Za-z0-9_-])([A-Z0-9]+(?:-[A-Z0-9]+)*)(?:$|[^A-Za-z0-9_-])`)
)

func builtin(name string) (matcher, bool) {
	switch name {
	case "email":
		return prefiltered{func(c counts) bool { return c.at > 0 }, regexMatcher{re: emailRE}}, true
	case "phone":
		return prefiltered{func(c counts) bool { return c.digits >= 7 },
			overlapping{regexMatcher{re: phoneRE, group: 1, keep: phoneDigits}}}, true
	case "ipv4":
		return prefiltered{func(c counts) bool { return c.dots >= 3 && c.digits >= 4 },
			overlapping{regexMatcher{re: ipv4Candidate, group: 1, keep: isIPv4}}}, true
	case "serial":
		return prefiltered{func(c counts) bool { return c.digits >= 1 && (c.upper >= 2 || c.sn) }, multiMatcher{
			regexMatcher{re: serialLabelled, group: 1, keep: hasDigit},
			regexMatcher{re: serialGlued, group: 1},
			overlapping{regexMatcher{re: serialShape, group: 1, keep: isSerialShape}},
		}}, true
	}
	return nil, false
}

// counts are cheap facts about a string that rule out most builtins
// before a regular expression runs: Go's regexp costs microseconds per
// value, and most values (codes, words, timestamps) match nothing.
type counts struct {
	digits, upper, dots, at int
	sn                      bool // holds "sn", "s/n" or "serial" in any case (a serial label)
}

func countOf(s string) counts {
	var c counts
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case b >= '0' && b <= '9':
			c.digits++
		case b >= 'A' && b <= 'Z':
			c.upper++
		case b == '.':
			c.dots++
		case b == '@':
			c.at++
		}
		if (s[i]|0x20) == 's' && !c.sn {
			c.sn = hasFoldPrefix(s[i+1:], "n") || hasFoldPrefix(s[i+1:], "/n") || hasFoldPrefix(s[i+1:], "erial")
		}
	}
	return c
}

// hasFoldPrefix reports whether s starts with the lower-case ASCII
// prefix, in any case.
func hasFoldPrefix(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if s[i]|0x20 != prefix[i] && s[i] != prefix[i] {
			return false
		}
	}
	return true
}

// prefiltered runs m only on strings whose counts pass pre.
type prefiltered struct {
	pre func(counts) bool
	m   matcher
}

func (p prefiltered) find(s string) [][2]int {
	if !p.pre(countOf(s)) {
		return nil
	}
	return p.m.find(s)
}

// overlapping runs a matcher whose pattern consumes one delimiter on
// each side of a candidate: "1.1.1.1 2.2.2.2" would otherwise lose the
// second, whose leading space the first match took. It searches again
// from the end of each found range.
type overlapping struct{ m regexMatcher }

func (o overlapping) find(s string) [][2]int {
	var out [][2]int
	for off := 0; off < len(s); {
		loc := o.m.re.FindStringSubmatchIndex(s[off:])
		if loc == nil {
			break
		}
		a, b := loc[2*o.m.group], loc[2*o.m.group+1]
		if a < 0 {
			off += max(loc[1], 1)
			continue
		}
		if o.m.keep == nil || o.m.keep(s[off+a:off+b]) {
			out = append(out, [2]int{off + a, off + b})
		}
		off += b
	}
	return out
}

// phoneDigits accepts a phone candidate with 7 to 15 digits (E.164's
// maximum is 15).
func phoneDigits(s string) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			n++
		}
	}
	return n >= 7 && n <= 15
}

// isIPv4 accepts exactly four dot-separated decimal octets of 0-255.
func isIPv4(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return false
	}
	for _, p := range parts {
		if len(p) == 0 || len(p) > 3 {
			return false
		}
		v := 0
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return false
			}
			v = v*10 + int(p[i]-'0')
		}
		if v > 255 {
			return false
		}
	}
	return true
}

// isSerialShape accepts a token of upper-case letters, digits and dashes
// that looks like a serial number rather than a word, a code, a model
// name or a date: at least two letters, and either at least 6 digits
// (SN-2024-00123, PX-4431-XK-09, SN123456) or one dash-separated part of
// at least 8 characters mixing letters with at least 3 digits
// (A1B2C3D4, C02XK0ZHJG5J, ABC12345). ISO-8601, ERR-1234, HTTP2,
// COVID-19, RTX4090, MODEL-X200, 2024-01-15 and 2024-01-15T10 are not
// serials.
func isSerialShape(s string) bool {
	letters, digits := 0, 0
	mixed := false
	for _, part := range strings.Split(s, "-") {
		l, d := 0, 0
		for i := 0; i < len(part); i++ {
			if part[i] >= '0' && part[i] <= '9' {
				d++
			} else {
				l++
			}
		}
		if l > 0 && d >= 3 && l+d >= 8 {
			mixed = true
		}
		letters, digits = letters+l, digits+d
	}
	if letters < 2 {
		return false
	}
	return digits >= 6 || mixed
}

// hasDigit accepts a labelled serial only when it holds a digit, so
// "serial port" keeps its "port".
func hasDigit(s string) bool { return strings.ContainsAny(s, "0123456789") }
