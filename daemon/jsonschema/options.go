package jsonschema

import "fmt"

// Defaults for Options; see the package documentation for why caps exist.
const (
	DefaultMaxStringLength = 256
	DefaultMaxItems        = 64
	DefaultMaxDepth        = 5
)

// repeatLimit is one more than the largest count llama.cpp's grammar
// parser repeats: it rejects x{n} for n of 2000 or more and silently reads
// x{0,n} as x* (unbounded!) when n is 2000 or more.
const repeatLimit = 2000

// maxDepthLimit bounds Options.MaxDepth: every level copies the rules of
// a recursive definition once more.
const maxDepthLimit = 32

// Number shapes the grammar admits: at most this many digits before and
// after the decimal point, and no exponent.
const (
	maxIntDigits  = 16
	maxFracDigits = 16
)

// Options bound what the grammar lets a model write, so that generation
// always ends. Zero values take the defaults. Validate does not apply the
// caps: they narrow the grammar, never the schema.
type Options struct {
	// MaxStringLength caps the characters of a string the grammar admits:
	// a string with no maxLength gets this cap, and a larger maxLength is
	// lowered to it. 0 means DefaultMaxStringLength; at most 1999.
	MaxStringLength int
	// MaxItems caps the items of an array the same way maxItems would. 0
	// means DefaultMaxItems; at most 1999.
	MaxItems int
	// MaxDepth is how many times the grammar follows a recursive $ref along
	// one path, and how deeply arrays nest in a value the schema leaves
	// unconstrained ({} or an array without items). 0 means
	// DefaultMaxDepth; at most 32.
	MaxDepth int
}

func (o Options) withDefaults() (Options, error) {
	if o.MaxStringLength == 0 {
		o.MaxStringLength = DefaultMaxStringLength
	}
	if o.MaxItems == 0 {
		o.MaxItems = DefaultMaxItems
	}
	if o.MaxDepth == 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	check := func(name string, v, limit int) error {
		if v < 0 || v > limit {
			return fmt.Errorf("option %s %d is outside 1 to %d: %w", name, v, limit, ErrUnsupported)
		}
		return nil
	}
	if err := check("MaxStringLength", o.MaxStringLength, repeatLimit-1); err != nil {
		return o, err
	}
	if err := check("MaxItems", o.MaxItems, repeatLimit-1); err != nil {
		return o, err
	}
	if err := check("MaxDepth", o.MaxDepth, maxDepthLimit); err != nil {
		return o, err
	}
	return o, nil
}
