package bytesize

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Size is a number of bytes. In YAML it may be written with a unit and
// is written back as a plain number; in JSON it is a plain integer (the
// default for its kind, which signed fleet manifests rely on: their
// canonical form has no room for "6GiB").
type Size int64

// Common sizes.
const (
	B   Size = 1
	KiB Size = 1 << 10
	MiB Size = 1 << 20
	GiB Size = 1 << 30
	TiB Size = 1 << 40
)

// units maps each unit Parse accepts, lower-cased, to its multiplier.
// The single letters are binary, as in most tools' flags (dd, Docker):
// "64k" is 65536, where "64kB" is 64000.
var units = map[string]Size{
	"b":   1,
	"kib": KiB, "mib": MiB, "gib": GiB, "tib": TiB,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"k": KiB, "m": MiB, "g": GiB, "t": TiB,
}

const unitList = "B, KiB, MiB, GiB, TiB, kB, MB, GB, TB, k, m, g or t"

// Parse reads a size: a number, optionally followed (with or without a
// space) by a unit from B, KiB, MiB, GiB, TiB (binary), kB, MB, GB, TB
// (decimal) or k, m, g, t (binary), in any case. The number may have a
// fraction or an exponent ("1.5GB", "1e3"); a fraction of a byte is
// dropped. Whole numbers are exact to the byte.
func Parse(s string) (Size, error) {
	t := strings.TrimSpace(s)
	num := strings.TrimRightFunc(t, isLetter)
	unit := strings.ToLower(t[len(num):])
	num = strings.TrimSpace(num)
	if num == "" {
		return 0, fmt.Errorf("%w, got %q", ErrSyntax, s)
	}
	mult := Size(1)
	if unit != "" {
		m, ok := units[unit]
		if !ok {
			return 0, fmt.Errorf("%w %q in %q (want %s)", ErrUnit, t[len(t)-len(unit):], s, unitList)
		}
		mult = m
	}
	if n, err := strconv.ParseInt(num, 10, 64); err == nil {
		switch {
		case n < 0:
			return 0, fmt.Errorf("%w, got %q", ErrNegative, s)
		case n > math.MaxInt64/int64(mult):
			return 0, fmt.Errorf("%w, got %q", ErrRange, s)
		}
		return Size(n) * mult, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	switch {
	case err != nil && !isRange(err), math.IsNaN(f):
		return 0, fmt.Errorf("%w, got %q", ErrSyntax, s)
	case f < 0:
		return 0, fmt.Errorf("%w, got %q", ErrNegative, s)
	case f*float64(mult) >= 1<<63: // float64(MaxInt64) rounds up to 2^63
		return 0, fmt.Errorf("%w, got %q", ErrRange, s)
	}
	return Size(f * float64(mult)), nil
}

func isLetter(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }

// isRange reports a number too large for a float64 ("1e400"), which is
// an overflow rather than a typo.
func isRange(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// String formats the size for people in binary units with one decimal
// ("7.3 GiB", "512.0 MiB"), or in bytes below 1 KiB ("1023 B"). It is
// rounded, so Parse of it need not give the size back.
func (s Size) String() string {
	n, sign := uint64(s), ""
	if s < 0 {
		n, sign = uint64(-s), "-" // -MinInt64 wraps to 2^63, which is right as uint64
	}
	if n < uint64(KiB) {
		return fmt.Sprintf("%s%d B", sign, n)
	}
	div, exp := uint64(KiB), 0
	for m := n / uint64(KiB); m >= uint64(KiB); m /= uint64(KiB) {
		div *= uint64(KiB)
		exp++
	}
	return fmt.Sprintf("%s%.1f %ciB", sign, float64(n)/float64(div), "KMGTPE"[exp])
}

// UnmarshalYAML reads a number of bytes or a size with a unit.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a size like 512MiB, got a %s", kindName(n.Kind))
	}
	v, err := Parse(n.Value)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalYAML writes the size as a plain number of bytes.
func (s Size) MarshalYAML() (any, error) { return int64(s), nil }

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	}
	return "document"
}
