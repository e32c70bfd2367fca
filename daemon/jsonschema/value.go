package jsonschema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// A decoded JSON value is nil, bool, string, json.Number, []any or
// *object. Objects keep their members in document order, because the
// order of a schema's properties is the order the grammar writes them in.

// object is a decoded JSON object.
type object struct {
	keys  []string
	vals  []any
	index map[string]int
	// dups lists keys that appeared more than once; their later values
	// were dropped. A PLC's parser may take the first or the last, so a
	// document with duplicates is invalid here.
	dups []string
}

func (o *object) get(key string) (any, bool) {
	i, ok := o.index[key]
	if !ok {
		return nil, false
	}
	return o.vals[i], true
}

func (o *object) add(key string, v any) {
	if _, ok := o.index[key]; ok {
		o.dups = append(o.dups, key)
		return
	}
	o.index[key] = len(o.keys)
	o.keys = append(o.keys, key)
	o.vals = append(o.vals, v)
}

// decodeJSON decodes one JSON document, numbers as json.Number.
func decodeJSON(data []byte) (any, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF // the decoder says EOF for a document cut short
	}
	if err != nil {
		return nil, err
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("data after the JSON value, which ends at byte %d", end)
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err == io.EOF {
		return nil, io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, err
	}
	switch tok := tok.(type) {
	case json.Delim:
		switch tok {
		case '{':
			o := &object{index: map[string]int{}}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, _ := kt.(string) // the decoder only yields string keys here
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				o.add(key, v)
			}
			_, err := dec.Token() // '}'
			return o, err
		case '[':
			a := []any{}
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			_, err := dec.Token() // ']'
			return a, err
		}
		return nil, fmt.Errorf("unexpected %v", tok)
	default:
		return tok, nil // nil, bool, string or json.Number
	}
}

// kindOf names a value's JSON type.
func kindOf(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		if d, _ := parseDecimal(string(v)); d.isInt() {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case *object:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// equal is JSON Schema's equality: numbers by value (1 equals 1.0),
// objects regardless of member order.
func equal(a, b any) bool {
	switch a := a.(type) {
	case nil:
		return b == nil
	case bool:
		bv, ok := b.(bool)
		return ok && a == bv
	case string:
		bv, ok := b.(string)
		return ok && a == bv
	case json.Number:
		bv, ok := b.(json.Number)
		if !ok {
			return false
		}
		da, _ := parseDecimal(string(a))
		db, _ := parseDecimal(string(bv))
		return da.cmp(db) == 0
	case []any:
		bv, ok := b.([]any)
		if !ok || len(a) != len(bv) {
			return false
		}
		for i := range a {
			if !equal(a[i], bv[i]) {
				return false
			}
		}
		return true
	case *object:
		bv, ok := b.(*object)
		if !ok || len(a.keys) != len(bv.keys) {
			return false
		}
		for i, k := range a.keys {
			w, ok := bv.get(k)
			if !ok || !equal(a.vals[i], w) {
				return false
			}
		}
		return true
	}
	return false
}

// encodeJSON writes v as compact JSON: members in order, numbers as
// written, no HTML escaping (a model would have to write "\u003c" for
// "<" otherwise).
func encodeJSON(v any) string {
	var b strings.Builder
	appendJSON(&b, v)
	return b.String()
}

func appendJSON(b *strings.Builder, v any) {
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if v {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case string:
		b.WriteString(quoteJSON(v))
	case json.Number:
		b.WriteString(string(v))
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			appendJSON(b, e)
		}
		b.WriteByte(']')
	case *object:
		b.WriteByte('{')
		for i, k := range v.keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(quoteJSON(k))
			b.WriteByte(':')
			appendJSON(b, v.vals[i])
		}
		b.WriteByte('}')
	}
}

// quoteJSON returns s as a JSON string literal.
func quoteJSON(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(buf.String(), "\n")
}

// short renders v for a message, cut to a readable length.
func short(v any) string {
	s := encodeJSON(v)
	const limit = 60
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	r := []rune(s)
	return string(r[:limit]) + "…"
}
