package jsonschema

import (
	"fmt"
	"strings"
)

// Primitive rules. Whitespace is at most one space or newline between
// tokens: enough for a model that wants to write ": " or a line per
// member, and too little to idle in.

// primitive defines a fixed rule once, under its natural name if free.
func (g *grammarBuilder) primitive(name, body string, max int) frag {
	if f, ok := g.base[name]; ok {
		return f
	}
	f := g.add(name, body, max)
	g.base[name] = f
	return f
}

func (g *grammarBuilder) ws() string {
	return g.primitive("ws", `[ \n]?`, 1).expr
}

// char is one character of a JSON string: anything but a quote, a
// backslash or a control character, or an escape.
//
// Surrogates and code points past U+10FFFF are excluded although no valid
// UTF-8 encodes them, because llama.cpp decodes a model's bytes leniently:
// byte-fallback tokens such as <0xED><0xA0><0x80> or <0xF5>… decode to
// them, and the engine then turns those bytes into U+FFFD, changing the
// document after the grammar accepted it. Excluding them makes llama.cpp
// refuse the lead bytes (ED, F4 to FF) outright, at the price of the
// characters U+D000 to U+D7FF and U+100000 and up when a model can only
// spell them byte by byte. \u escapes of surrogates are left out too: a
// lone one decodes to U+FFFD, and a pair would count as two characters
// against maxLength here but one in a validator.
func (g *grammarBuilder) char() string {
	hex := g.primitive("uhex", `[0-9a-cA-CeEfF] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2}`, 4)
	return g.primitive("char", `[^"\\\x00-\x1F\x7F\uD800-\uDFFF\U00110000-\U7FFFFFFF] | "\\" ( ["\\/bfnrt] | "u" `+hex.expr+` )`, 6).expr
}

// maxCharBytes is the longest a char can be written: \uXXXX.
const maxCharBytes = 6

func (g *grammarBuilder) boolean() frag { return g.primitive("boolean", `"true" | "false"`, 5) }
func (g *grammarBuilder) null() frag    { return g.primitive("null", `"null"`, 4) }

// Integers and numbers are written without leading zeros, without an
// exponent (PLC parsers handle plain decimals best, and without one the
// digit caps bound the length) and never as -0.
func (g *grammarBuilder) integer() frag {
	return g.primitive("integer", `"0" | "-"? [1-9] [0-9]{0,15}`, 1+maxIntDigits)
}

func (g *grammarBuilder) number() frag {
	return g.primitive("number", `( "0" | "-"? [1-9] [0-9]{0,15} ) `+fracAny+` | "-0" `+fracNonZero,
		2+maxIntDigits+maxFracDigits)
}

func (g *grammarBuilder) str() frag {
	c := g.char()
	return g.primitive("string", `"\"" `+repeat(c, 0, g.opts.MaxStringLength)+` "\""`,
		2+mulSat(maxCharBytes, g.opts.MaxStringLength))
}

// any is a value the schema does not constrain, arrays nested at most
// depth deep. Its objects are empty: the grammar only writes declared
// properties, and an unconstrained value declares none.
func (g *grammarBuilder) any(depth int) frag {
	name := fmt.Sprintf("value-%d", depth)
	if f, ok := g.base[name]; ok {
		return f
	}
	alts := []frag{g.null(), g.boolean(), g.number(), g.str(), g.emptyObject()}
	if depth > 0 {
		alts = append(alts, g.list(name+"-array", g.any(depth-1), 0, g.opts.MaxItems))
	}
	f := g.union(name, alts)
	g.base[name] = f
	return f
}

func (g *grammarBuilder) emptyObject() frag {
	return g.primitive("empty-object", `"{" `+g.ws()+` "}"`, 3)
}

// union is a rule matching any of alts.
func (g *grammarBuilder) union(name string, alts []frag) frag {
	if len(alts) == 1 {
		return alts[0]
	}
	exprs := make([]string, len(alts))
	most := 0
	for i, a := range alts {
		exprs[i] = a.expr
		most = max(most, a.max)
	}
	return g.add(name, strings.Join(exprs, " | "), most)
}

// list is an array of lo to hi items. The items are a rule of their own so
// that the optional part is one symbol (see grammarBuilder).
func (g *grammarBuilder) list(name string, item frag, lo, hi int) frag {
	ws := g.ws()
	if hi == 0 {
		return g.add(name, `"[" `+ws+` "]"`, 3)
	}
	items := g.add(name+"-items", join(item.expr, ws, repeat(`( "," `+ws+" "+item.expr+" "+ws+" )", max(lo-1, 0), hi-1)),
		addSat(mulSat(hi, addSat(item.max, 1)), mulSat(hi-1, 2)))
	opt := ""
	if lo == 0 {
		opt = "?"
	}
	return g.add(name, `"[" `+ws+" "+items.expr+opt+` "]"`, addSat(items.max, 3))
}

// string is a string within the node's lengths (capped), or its pattern.
func (g *grammarBuilder) string(n *node, name string) (frag, bool) {
	if n.pattern != nil {
		if f, ok := g.pattern(n, name); ok {
			return f, true
		}
	}
	hi := g.opts.MaxStringLength
	if n.maxLength >= 0 {
		hi = min(hi, n.maxLength)
	}
	lo := n.minLength
	if lo > hi {
		g.c.fail(n.ptr, ErrUnsupported, "minLength %d is more than the grammar's cap of %d characters (Options.MaxStringLength)", lo, hi)
		return frag{}, false
	}
	if lo == 0 && hi == g.opts.MaxStringLength {
		return g.str(), true
	}
	return g.add(name, join(`"\""`, repeat(g.char(), lo, hi), `"\""`), 2+mulSat(maxCharBytes, hi)), true
}
