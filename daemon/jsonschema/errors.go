package jsonschema

import (
	"errors"
	"strings"
)

var (
	// ErrUnsupported is wrapped by every compile error about a keyword, a
	// form of a keyword or an option this package does not implement. The
	// schema may be valid JSON Schema; ember cannot enforce it.
	ErrUnsupported = errors.New("not supported")

	// ErrInvalidSchema is wrapped by every compile error about a schema
	// that is malformed (a keyword with a value of the wrong kind, a $ref
	// to nothing) or that no document could satisfy.
	ErrInvalidSchema = errors.New("invalid schema")

	// ErrInvalid is wrapped by every error Validate returns: the document
	// is not JSON, or it violates the schema.
	ErrInvalid = errors.New("document does not match the schema")
)

// SchemaError is one problem Compile found. Compile joins them all with
// errors.Join, so that a config can be fixed in one pass.
type SchemaError struct {
	// Pointer is the JSON pointer of the offending schema object, "" for
	// the root.
	Pointer string
	Message string
	// Err is ErrUnsupported or ErrInvalidSchema.
	Err error
}

func (e *SchemaError) Error() string {
	return "schema " + displayPointer(e.Pointer) + ": " + e.Message
}

// Unwrap returns the sentinel, for errors.Is.
func (e *SchemaError) Unwrap() error { return e.Err }

// ValidationError is one violation Validate found. Validate joins them
// with errors.Join; each satisfies errors.Is(err, ErrInvalid).
type ValidationError struct {
	// Pointer is the JSON pointer of the offending value in the document,
	// "" for the root.
	Pointer string
	Message string
}

func (e *ValidationError) Error() string {
	return displayPointer(e.Pointer) + ": " + e.Message
}

// Is makes errors.Is(err, ErrInvalid) true for it.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// displayPointer names the root explicitly: the empty pointer would read
// as a missing word, and "/" is the pointer of the key "".
func displayPointer(p string) string {
	if p == "" {
		return "(root)"
	}
	return p
}

// pointerEscaper escapes a reference token as RFC 6901 requires.
var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// child returns the pointer of member key (or index) under p.
func child(p, key string) string { return p + "/" + pointerEscaper.Replace(key) }
