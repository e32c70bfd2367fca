// Package topic implements MQTT topic names and filters: validity and
// wildcard matching, as MQTT 3.1.1 and 5 define them.
package topic

import (
	"fmt"
	"strings"
)

// ValidFilter checks a subscription filter: '+' must fill a whole level,
// '#' must fill the last level, and the filter must be non-empty UTF-8
// without NUL.
func ValidFilter(f string) error {
	if f == "" {
		return fmt.Errorf("topic filter is empty")
	}
	if strings.ContainsRune(f, 0) {
		return fmt.Errorf("topic filter %q contains NUL", f)
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return fmt.Errorf("topic filter %q: '#' must be the whole last level", f)
		}
		if strings.Contains(l, "+") && l != "+" {
			return fmt.Errorf("topic filter %q: '+' must be a whole level", f)
		}
	}
	return nil
}

// ValidName checks a topic name to publish to: non-empty, no wildcards,
// no NUL.
func ValidName(t string) error {
	switch {
	case t == "":
		return fmt.Errorf("topic is empty")
	case strings.ContainsAny(t, "+#"):
		return fmt.Errorf("topic %q contains a wildcard", t)
	case strings.ContainsRune(t, 0):
		return fmt.Errorf("topic %q contains NUL", t)
	}
	return nil
}

// Match reports whether topic name t matches filter f. Topics starting
// with '$' are not matched by a leading wildcard, as the spec requires.
func Match(f, t string) bool {
	if strings.HasPrefix(t, "$") && (strings.HasPrefix(f, "+") || strings.HasPrefix(f, "#")) {
		return false
	}
	for {
		fl, frest, fmore := strings.Cut(f, "/")
		tl, trest, tmore := strings.Cut(t, "/")
		switch {
		case fl == "#":
			return true
		case fl != "+" && fl != tl:
			return false
		}
		if !fmore || !tmore {
			// "a/#" also matches "a": '#' includes the parent level.
			return fmore == tmore || (fmore && frest == "#")
		}
		f, t = frest, trest
	}
}

// Levels splits a topic into its levels.
func Levels(t string) []string { return strings.Split(t, "/") }

// Overlap reports whether some topic name matches both filters a and b
// (both valid). Like Match, a leading wildcard never reaches a topic
// starting with '$'.
func Overlap(a, b string) bool {
	if strings.HasPrefix(a, "$") != strings.HasPrefix(b, "$") {
		// One filter spells a '$' topic; the other starts with a
		// wildcard (which cannot reach it) or another literal level.
		al, _, _ := strings.Cut(a, "/")
		bl, _, _ := strings.Cut(b, "/")
		if al == "+" || al == "#" || bl == "+" || bl == "#" {
			return false
		}
	}
	for {
		al, arest, amore := strings.Cut(a, "/")
		bl, brest, bmore := strings.Cut(b, "/")
		switch {
		case al == "#" || bl == "#":
			return true
		case al != "+" && bl != "+" && al != bl:
			return false
		}
		switch {
		case !amore && !bmore:
			return true
		case !amore:
			return brest == "#" // "a" and "a/#": '#' includes the parent
		case !bmore:
			return arest == "#"
		}
		a, b = arest, brest
	}
}
