package fleet

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// TestCanonicalGolden checks testdata/canonical/NAME.in.json against
// NAME.want.json. The RFC 8785 cases are the RFC's own examples
// (sections 3.2.2 and 3.2.3), written by hand, not by this code.
func TestCanonicalGolden(t *testing.T) {
	ins, err := filepath.Glob("testdata/canonical/*.in.json")
	if err != nil || len(ins) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".in.json")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(strings.TrimSuffix(in, ".in.json") + ".want.json")
			if err != nil {
				t.Fatal(err)
			}
			got, err := Canonicalize(data)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("canonical form\n got %s\nwant %s", got, want)
			}
			again, err := Canonicalize(got)
			if err != nil || !bytes.Equal(again, got) {
				t.Fatalf("not idempotent: %s, %v", again, err)
			}
		})
	}
}

// TestES6Numbers is RFC 8785 appendix B: IEEE 754 bit patterns and their
// ECMAScript form.
func TestES6Numbers(t *testing.T) {
	cases := []struct {
		bits uint64
		want string
	}{
		{0x0000000000000000, "0"},
		{0x8000000000000000, "0"},
		{0x0000000000000001, "5e-324"},
		{0x8000000000000001, "-5e-324"},
		{0x7fefffffffffffff, "1.7976931348623157e+308"},
		{0xffefffffffffffff, "-1.7976931348623157e+308"},
		{0x4340000000000000, "9007199254740992"},
		{0xc340000000000000, "-9007199254740992"},
		{0x4430000000000000, "295147905179352830000"},
		{0x44b52d02c7e14af5, "9.999999999999997e+22"},
		{0x44b52d02c7e14af6, "1e+23"},
		{0x44b52d02c7e14af7, "1.0000000000000001e+23"},
		{0x444b1ae4d6e2ef4e, "999999999999999700000"},
		{0x444b1ae4d6e2ef4f, "999999999999999900000"},
		{0x444b1ae4d6e2ef50, "1e+21"},
		{0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
		{0x3eb0c6f7a0b5ed8d, "0.000001"},
		{0x41b3de4355555553, "333333333.3333332"},
		{0x41b3de4355555554, "333333333.33333325"},
		{0x41b3de4355555555, "333333333.3333333"},
		{0x41b3de4355555556, "333333333.3333334"},
		{0x41b3de4355555557, "333333333.33333343"},
		{0xbecbf647612f3696, "-0.0000033333333333333333"},
		{0x43143ff3c1cb0959, "1424953923781206.2"},
	}
	for _, c := range cases {
		if got := formatES6(math.Float64frombits(c.bits)); got != c.want {
			t.Errorf("%016x: got %s, want %s", c.bits, got, c.want)
		}
	}
}

func TestCanonicalRefuses(t *testing.T) {
	cases := map[string]string{
		"duplicate key":           `{"a":1,"a":2}`,
		"duplicate nested key":    `{"x":{"k":1,"k":1}}`,
		"invalid UTF-8":           "{\"a\":\"\xff\"}",
		"lone high surrogate":     `"\ud800"`,
		"lone low surrogate":      `"\udc00"`,
		"high then not low":       `"\ud800\u0041"`,
		"leading zero":            `01`,
		"integer beyond 2^53":     `9007199254740993`,
		"negative beyond 2^53":    `-9007199254740993`,
		"float overflow":          `1e400`,
		"trailing data":           `{} {}`,
		"raw control character":   "\"a\tb\"",
		"NaN":                     `NaN`,
		"single quotes":           `{'a':1}`,
		"trailing comma":          `[1,]`,
		"missing value":           `{"a":}`,
		"bad escape":              `"\x"`,
		"empty":                   ``,
		"bare minus":              `-`,
		"dot without digits":      `1.`,
		"exponent without digits": `1e+`,
		"too deep":                strings.Repeat("[", maxDepth+2) + strings.Repeat("]", maxDepth+2),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := Canonicalize([]byte(in))
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Canonicalize(%q) = %q, %v; want a SyntaxError", in, out, err)
			}
		})
	}
}

// TestCanonicalAgreesWithEncodingJSON: for values encoding/json can read,
// the canonical form means the same thing.
func TestCanonicalAgreesWithEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`{"b":[1,2.5,-3e2],"a":"x\u00e9\ud83d\ude00","c":{"z":null,"y":true}}`,
		`"<&>\u2028"`,
		`[9007199254740991,-9007199254740991,0.1,1e-7]`,
	} {
		got, err := Canonicalize([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		if err := json.Unmarshal([]byte(in), &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(got, &b); err != nil {
			t.Fatalf("canonical form %s is not JSON: %v", got, err)
		}
		if ja, jb := mustJSON(t, a), mustJSON(t, b); !bytes.Equal(ja, jb) {
			t.Errorf("%s: meaning changed: %s vs %s", in, ja, jb)
		}
	}
}

// TestManifestGolden pins the bytes a signature covers for
// testdata/manifest.yaml, and the whole envelope signed by a fixed key
// (ed25519 is deterministic). A change here breaks every device in the
// field: it needs a new envelope format, not a new golden. Regenerate
// with -update only for a new testdata/manifest.yaml.
func TestManifestGolden(t *testing.T) {
	data, err := os.ReadFile("testdata/manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifestYAML(data)
	if err != nil {
		t.Fatal(err)
	}
	env := mustSign(t, m, testKey(1))
	e, _, err := ParseEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	golden := map[string][]byte{
		"testdata/manifest.canonical.json": e.Manifest,
		"testdata/manifest.envelope.json":  env,
	}
	for path, got := range golden {
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s changed:\n got %s\nwant %s", path, got, want)
		}
	}
	// The golden envelope verifies with the public key alone.
	v, err := Verify(golden["testdata/manifest.envelope.json"], NewKeyRing(pub(testKey(1))))
	if err != nil {
		t.Fatal(err)
	}
	if v.Manifest.Version != 7 || len(v.Manifest.Artifacts) != 2 || v.Manifest.Fleet != "line3" || v.Manifest.MinVersion != 5 {
		t.Errorf("golden manifest decoded as %+v", v.Manifest)
	}
	// The format 1 golden, signed before manifests were scoped, is
	// refused as such, with a reason that says what to do.
	old, err := os.ReadFile("testdata/manifest.v1.envelope.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(old, NewKeyRing(pub(testKey(1)))); !errors.Is(err, ErrUnscoped) || !strings.Contains(err.Error(), "--fleet") {
		t.Errorf("format 1 envelope: %v, want ErrUnscoped", err)
	}
}
