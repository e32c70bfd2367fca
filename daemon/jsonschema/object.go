package jsonschema

import "strings"

// object writes the declared properties in schema order: required ones
// always, optional ones or not. Undeclared properties are never written,
// whatever additionalProperties says.
func (g *grammarBuilder) object(n *node, budget int, name string) (frag, bool) {
	required := map[string]bool{}
	for _, r := range n.required {
		required[r] = true
	}
	ws := g.ws()
	var members []member
	for _, p := range n.props {
		pname := childName(name, p.name)
		v, ok := g.node(p.node, budget, pname)
		if !ok {
			if required[p.name] {
				return frag{}, false
			}
			continue // only too deep: leave the optional property out
		}
		key := quoteJSON(p.name) + ":"
		kv := g.add(pname+"-kv", join(gbnfLiteral(key), ws, v.expr, ws), addSat(len(key), v.max, 2))
		members = append(members, member{kv, required[p.name]})
	}
	body, bodyMax := g.members(name, members)
	return g.add(name, join(`"{"`, ws, body, `"}"`), addSat(bodyMax, 3)), true
}

type member struct {
	kv       frag
	required bool
}

// members writes the properties between the braces. With a required
// property first it is a plain sequence; otherwise the object starts with
// one of the properties up to the first required one, and rest rules keep
// the grammar linear in the number of properties.
func (g *grammarBuilder) members(name string, ms []member) (string, int) {
	if len(ms) == 0 {
		return "", 0
	}
	ws := g.ws()
	total := 0
	for i, m := range ms {
		total = addSat(total, m.kv.max)
		if i > 0 {
			total = addSat(total, 2)
		}
	}
	next := func(i int) string {
		if ms[i].required {
			return join(`","`, ws, ms[i].kv.expr)
		}
		return `( "," ` + ws + " " + ms[i].kv.expr + " )?"
	}
	first := len(ms)
	for i, m := range ms {
		if m.required {
			first = i
			break
		}
	}
	if first == 0 {
		parts := []string{ms[0].kv.expr}
		for i := 1; i < len(ms); i++ {
			parts = append(parts, next(i))
		}
		return join(parts...), total
	}
	// rest[i] matches what may follow once property i-1 is written.
	rest := make([]string, len(ms)+1)
	for i := len(ms) - 1; i >= 1; i-- {
		rest[i] = g.add(name+"-rest", join(next(i), rest[i+1]), 0).expr
	}
	var alts []string
	for i := 0; i <= first && i < len(ms); i++ {
		alts = append(alts, join(ms[i].kv.expr, rest[i+1]))
	}
	body := "( " + strings.Join(alts, " | ") + " )"
	if first == len(ms) {
		body += "?"
	}
	return body, total
}

func (g *grammarBuilder) array(n *node, budget int, name string) (frag, bool) {
	hi := g.opts.MaxItems
	if n.maxItems >= 0 {
		hi = min(hi, n.maxItems)
	}
	lo := n.minItems
	if lo > hi {
		g.c.fail(n.ptr, ErrUnsupported, "minItems %d is more than the grammar's cap of %d items (Options.MaxItems)", lo, hi)
		return frag{}, false
	}
	var item frag
	ok := true
	if n.items == nil {
		item = g.any(g.opts.MaxDepth - 1)
	} else {
		item, ok = g.node(n.items, budget, name+"-item")
	}
	if !ok {
		if lo > 0 {
			return frag{}, false
		}
		hi = 0 // only too deep: the empty array is the way out
	}
	return g.list(name, item, lo, hi), true
}
