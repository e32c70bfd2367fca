package guard

import (
	"encoding/base64"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Threshold is the score from which a message is flagged.
const Threshold = 3

// Text is one piece of a message to scan, and where it came from (a
// field's path, "topic", "prompt").
type Text struct {
	Where string
	Text  string
	// Joined marks text made by joining other texts (the prompt's data
	// end to end): scanned for phrases split across them, but not for
	// base64, which each part was scanned for on its own (joined without
	// spaces, ordinary words make long runs that look like base64).
	Joined bool
}

// Report is what the guard found in a message.
type Report struct {
	// Score is the sum of the weights of the rules that matched.
	Score int `json:"score"`
	// Matched names each rule that matched and where it first did, as
	// rule@where, in rule order.
	Matched []string `json:"matched,omitempty"`
}

// Flagged reports whether the score reaches Threshold.
func (r Report) Flagged() bool { return r.Score >= Threshold }

// view is a form of the text a rule reads.
type view int

const (
	raw     view = iota // folded, lower case
	words               // letters and digits, one space between runs
	compact             // letters and digits only
)

// rule is one heuristic: it matches when re matches a view of the text,
// unless unless matches the matched text.
type rule struct {
	name   string
	weight int
	view   view
	re     *regexp.Regexp
	unless *regexp.Regexp
}

func r(name string, weight int, v view, expr string) rule {
	return rule{name: name, weight: weight, view: v, re: regexp.MustCompile(expr)}
}

const (
	enVerb      = `(?:ignore|ignoring|disregard|disregarding|forget|neglect)`
	enModifier  = `(?:previous|prior|above|earlier|preceding|former|foregoing|all|any|every|your|system|original|initial|old)`
	enObject    = `(?:instructions?|prompts?|rules|directions|directives|guidelines|guidance|orders)`
	deVerb      = `(?:ignorier\w*|vergiss|vergessen|missacht\w*|übergeh\w*)`
	deModifier  = `(?:vorherig\w*|vorig\w*|bisherig\w*|obig\w*|früher\w*|vorangegangen\w*|alle|sämtliche\w*|deine\w*|ihre\w*)`
	deObject    = `(?:anweisung\w*|instruktion\w*|befehle\w*|regeln|vorgaben|anordnungen)`
	jaModifier  = `(?:以前|これまで|今まで|前|上記|上|先ほど|先程|過去|全て|すべて|全部)`
	jaObject    = `(?:指示|命令|指令|プロンプト|ルール|設定)`
	chatToken   = `<\|[a-z0-9_]{1,40}\|>|\[/?inst\]|<</?sys>>|</?s>|<(?:start|end)_of_turn>`
	tokenPrefix = `<\|[a-z0-9_]{0,40}$`
	tokenSuffix = `^\|?[a-z0-9_]{1,40}\|>`
)

// rules are the heuristics, in the order a report lists them.
var rules = []rule{
	r("ignore-instructions", 3, words, `\b`+enVerb+`(?: \S+){0,3}? `+enModifier+`(?: \S+){0,2}? ?`+enObject+`\b`),
	r("ignore-instructions", 3, words, `\b`+enVerb+`(?: (?:all|everything|anything|the|that|of|what|is|was|written|said|stated))* above\b`),
	r("ignore-instructions", 3, words, `\b`+enVerb+` (?:all |everything |anything )?(?:you (?:were|have been) (?:told|given)|that came before|before this)\b`),
	r("you-are-now", 3, words, `\byou are now (?:a|an|the|my|no longer|free|dan|unrestricted|jailbroken|in developer mode|evil|uncensored)\b`),
	r("you-are-now", 3, words, `\b(?:from now on|henceforth)(?: \S+)? you\b|\bpretend (?:to be|you are)\b|\bact as (?:an? |the )?(?:unrestricted|unfiltered|uncensored|jailbroken|evil|admin|root|system|dan)\b`),
	r("you-are-now-weak", 1, words, `\byou are now\b|\byou re now\b`),
	r("system-prompt", 3, words, `\bsystem ?prompts?\b|\bdeveloper mode\b|\bjailbr(?:eak|oken)\w*|\bdo anything now\b`),
	r("system-prompt", 3, words, `\b(?:reveal|print|show|repeat|output|leak|disclose|tell me)\b(?: \S+){0,3} (?:your|the|system|initial|hidden|original) (?:instructions|prompt)\b`),
	r("new-instructions", 2, words, `\bnew instructions\b|\bupdated instructions\b`),
	r("imperative", 2, words, `\byou (?:must|should|will|shall) (?:now )?(?:obey|comply|respond|reply|answer|output|say|print|only)\b|\bwithout (?:any )?(?:restrictions|limitations|filters)\b`),
	r("role-marker", 3, raw, `(?m)^[ \t>*]*(?:assistant[ \t]*:|#{2,}[ \t]*(?:instructions?|system|response|input)\b)`),
	r("role-marker-weak", 2, raw, `(?m)^[ \t>*]*(?:system|user|human)[ \t]*:`),
	r("template-token", 3, raw, chatToken+`|`+tokenPrefix+`|`+tokenSuffix),
	r("ja-ignore-instructions", 3, compact, jaModifier+`の?`+jaObject+`(?:を|は)?(?:全て|すべて|全部)?(?:無視|忘れ)`),
	r("ja-you-are-now", 3, compact, `あなたは(?:今|これ)から|(?:今|これ)からあなたは|あなたはもう`),
	r("ja-system-prompt", 3, compact, `システムプロンプト`),
	r("ja-new-instructions", 2, compact, `新しい指示|新たな指示`),
	{name: "de-ignore-instructions", weight: 3, view: words,
		re:     regexp.MustCompile(`\b` + deVerb + `(?: \S+){0,3}? ` + deModifier + `(?: \S+){0,2}? ?` + deObject + `\b`),
		unless: regexp.MustCompile(`\bnicht\b`)},
	r("de-you-are-now", 3, words, `\bdu bist (?:jetzt|nun|ab sofort|ab jetzt)\b|\bab (?:sofort|jetzt) bist du\b|\bvon nun an bist du\b`),
	r("de-system-prompt", 3, words, `\bsystem ?prompts?\b|\bsystem ?anweisung\w*`),
	r("de-new-instructions", 2, words, `\bneue anweisungen\b`),
}

// Scan scores texts. It is safe for concurrent use.
func Scan(texts ...Text) Report {
	found := map[string]string{} // rule name → where
	score := map[string]int{}
	for _, t := range texts {
		depth := 0
		if t.Joined {
			depth = maxDepth
		}
		scan(t.Text, t.Where, "", depth, found, score)
	}
	var rep Report
	seen := map[string]bool{}
	for _, ru := range rules {
		for _, prefix := range []string{"", "base64:"} {
			name := prefix + ru.name
			where, ok := found[name]
			if !ok || seen[name] {
				continue
			}
			seen[name] = true
			rep.Score += score[name]
			rep.Matched = append(rep.Matched, name+"@"+where)
		}
	}
	return rep
}

// maxDepth bounds base64 inside base64.
const maxDepth = 2

func scan(text, where, prefix string, depth int, found map[string]string, score map[string]int) {
	if text == "" {
		return
	}
	views := [3]string{}
	views[raw] = fold(text)
	if !prefilterOff && asciiOnly(views[raw]) && !containsAny(views[raw], asciiAnchors) {
		// The common case, plain ASCII sensor data: no view needs making.
		if depth < maxDepth && hasBase64Run(text) {
			for _, dec := range decodedBase64(text) {
				scan(dec, where, "base64:", depth+1, found, score)
			}
		}
		return
	}
	views[words], views[compact] = wordsOf(views[raw])
	if !prefilterOff && !mayMatch(views) {
		// Most sensor data holds no word any rule needs: skip the
		// regular expressions, which would cost more than the rest of
		// the message's way into the store.
		if depth < maxDepth && hasBase64Run(text) {
			for _, dec := range decodedBase64(text) {
				scan(dec, where, "base64:", depth+1, found, score)
			}
		}
		return
	}
	for _, ru := range rules {
		name := prefix + ru.name
		if _, ok := found[name]; ok {
			continue
		}
		if matches(ru, views[ru.view]) {
			found[name], score[name] = where, ru.weight
		}
	}
	if depth < maxDepth && hasBase64Run(text) {
		for _, dec := range decodedBase64(text) {
			scan(dec, where, "base64:", depth+1, found, score)
		}
	}
}

func matches(ru rule, s string) bool {
	if ru.unless == nil {
		return ru.re.MatchString(s)
	}
	for _, m := range ru.re.FindAllString(s, -1) {
		if !ru.unless.MatchString(m) {
			return true
		}
	}
	return false
}

// fold lowers s, folds full-width ASCII to ASCII (so "ｉｇｎｏｒｅ" is
// "ignore") and drops zero-width characters and soft hyphens, which
// split a word without showing.
func fold(s string) string {
	if asciiOnly(s) {
		return strings.ToLower(s) // nothing else to fold; no copy if already lower
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, c := range s {
		switch {
		case c >= 0xFF01 && c <= 0xFF5E:
			c -= 0xFEE0
		case c == 0x3000:
			c = ' '
		case c == 0x00AD || (c >= 0x200B && c <= 0x200F) || c == 0x2060 || c == 0xFEFF:
			continue
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}

// wordsOf returns the words view (letters and digits, one space between
// runs) and the compact view (letters and digits only) of folded text.
func wordsOf(s string) (string, string) {
	var w, c strings.Builder
	space := false
	for _, ch := range s {
		if unicode.IsLetter(ch) || unicode.IsDigit(ch) || unicode.Is(unicode.Mn, ch) {
			if space && w.Len() > 0 {
				w.WriteByte(' ')
			}
			space = false
			w.WriteRune(ch)
			c.WriteRune(ch)
			continue
		}
		space = true
	}
	return w.String(), c.String()
}

var (
	b64Std = regexp.MustCompile(`[A-Za-z0-9+/]{20,}={0,2}`)
	b64URL = regexp.MustCompile(`[A-Za-z0-9_-]{20,}={0,2}`)
)

// decodedBase64 returns the text that base64 runs in s decode to, when
// it is printable UTF-8 (binary sensor frames are not).
func decodedBase64(s string) []string {
	var out []string
	try := func(run string, encs ...*base64.Encoding) {
		for _, enc := range encs {
			b, err := enc.DecodeString(run)
			if err != nil {
				continue
			}
			if printable(b) {
				out = append(out, string(b))
			}
			return
		}
	}
	for _, run := range b64Std.FindAllString(s, 16) {
		try(run, base64.StdEncoding, base64.RawStdEncoding)
	}
	for _, run := range b64URL.FindAllString(s, 16) {
		if strings.ContainsAny(run, "-_") {
			try(run, base64.URLEncoding, base64.RawURLEncoding)
		}
	}
	return slices.Compact(out)
}

// printable reports whether b is UTF-8 text: at most one in twenty runes
// a control character other than whitespace.
func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	bad, n := 0, 0
	for _, c := range string(b) {
		n++
		if unicode.IsControl(c) && c != '\n' && c != '\r' && c != '\t' {
			bad++
		}
	}
	return n > 0 && bad*20 <= n
}

// Every rule needs one of these in its view to match: a word in the
// words view (ignore, you, system, …; the German and English rules),
// a mark in the raw view (role markers, template tokens), or a Japanese
// word in the compact view. A text with none of them matches no rule;
// TestPrefilterChangesNoReport holds the lists to the rules.
var (
	wordAnchors = []string{
		"ignor", "disregard", "forget", "neglect", "you", "henceforth", "pretend", "act as", "system", "developer",
		"jailbr", "anything", "instruction", "prompt", "without",
		"vergiss", "vergessen", "missacht", "übergeh", "bist", "anweisung",
	}
	rawAnchors     = []string{"assistant", "#", "system", "user", "human", "<", "|>", "inst]"}
	compactAnchors = []string{"無視", "忘れ", "あなた", "システム", "指示"}
)

// asciiAnchors stand for every anchor in ASCII text, checked on the raw
// view alone: a word view's run of letters is a run of the raw text, so
// an anchor without a space shows in both ("act" stands for "act as"),
// and the Japanese anchors need text that is not ASCII.
var asciiAnchors = func() []string {
	out := []string{"act"}
	for _, a := range append(append([]string(nil), wordAnchors...), rawAnchors...) {
		if a != "act as" && asciiOnly(a) {
			out = append(out, a)
		}
	}
	return out
}()

func asciiOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func containsAny(s string, subs []string) bool {
	for _, a := range subs {
		if strings.Contains(s, a) {
			return true
		}
	}
	return false
}

// prefilterOff runs every rule on every text (tests compare).
var prefilterOff bool

// mayMatch reports whether any rule could match one of views.
func mayMatch(views [3]string) bool {
	for _, set := range []struct {
		v       view
		anchors []string
	}{{words, wordAnchors}, {raw, rawAnchors}, {compact, compactAnchors}} {
		for _, a := range set.anchors {
			if strings.Contains(views[set.v], a) {
				return true
			}
		}
	}
	return false
}

// hasBase64Run reports whether s holds a run of base64 characters as long
// as decodedBase64 looks for, with upper and lower case letters in it,
// without running its expressions: base64 of text mixes cases, while
// hex ids, serial numbers and padding (runs of one case) do not, and
// decoding them costs more than the rest of a message's way in.
func hasBase64Run(s string) bool {
	if prefilterOff {
		return true
	}
	run, upper, lower := 0, false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= 'a' && c <= 'z':
			lower = true
		case c >= '0' && c <= '9' || c == '+' || c == '/' || c == '-' || c == '_':
		default:
			run, upper, lower = 0, false, false
			continue
		}
		if run++; run >= 20 && upper && lower {
			return true
		}
	}
	return false
}
