package guard

import (
	"bufio"
	"encoding/json"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"
)

// The prefilter only saves work: on both corpora, and on random
// mixtures of the rules' own words, every report is the same with it as
// without it.
func TestPrefilterChangesNoReport(t *testing.T) {
	var texts []string
	for _, file := range []string{"testdata/injections.jsonl", "testdata/benign.jsonl"} {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var line struct{ Payload any }
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Fatal(err)
			}
			texts = append(texts, stringsIn(line.Payload)...)
		}
		f.Close()
	}
	words := strings.Fields("ignore IGNORE previous all instructions you are now from on pretend act as system prompt " +
		"reveal your jailbreak new without restrictions must obey assistant: ### user: <|im_start|> <|im end|> [INST] <<SYS>> " +
		"Ignoriere vorherigen Anweisungen du bist jetzt ab sofort 以前の 指示を 無視 あなたは 今から システムプロンプト 新しい指示 " +
		"press-4 E-42 hydraulic 12.5 mA : \n # < > | ｉｇｎｏｒｅ \u200b")
	rng := rand.New(rand.NewPCG(7, 11))
	for range 3000 {
		var b strings.Builder
		for range 1 + rng.IntN(8) {
			b.WriteString(words[rng.IntN(len(words))])
			b.WriteString([]string{" ", "", "\n", "  ", ": "}[rng.IntN(5)])
		}
		texts = append(texts, b.String())
	}
	for _, text := range texts {
		with := Scan(Text{Where: "f", Text: text})
		prefilterOff = true
		without := Scan(Text{Where: "f", Text: text})
		prefilterOff = false
		if !reflect.DeepEqual(with, without) {
			t.Errorf("%q: with the prefilter %+v, without %+v", text, with, without)
		}
	}
}

func stringsIn(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case map[string]any:
		var out []string
		for k, e := range x {
			out = append(append(out, k), stringsIn(e)...)
		}
		return out
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, stringsIn(e)...)
		}
		return out
	}
	return nil
}

func BenchmarkScanTypicalReading(b *testing.B) {
	texts := []Text{{Text: "plant/line3/press4/alarm", Where: "topic"}, {Text: "press-4", Where: "machine"}, {Text: "E-42", Where: "code"},
		{Text: "hydraulic pressure low on ram 2", Where: "note"}, {Text: "Alarm \"E-42\" on \"press-4\": hydraulic pressure low on ram 2", Where: "prompt"}}
	for b.Loop() {
		Scan(texts...)
	}
}
