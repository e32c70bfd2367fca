package topic

import "testing"

func TestMatch(t *testing.T) {
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"plant/line3/+/alarm", "plant/line3/press4/alarm", true},
		{"plant/line3/+/alarm", "plant/line3/press4/status", false},
		{"plant/line3/+/alarm", "plant/line3/alarm", false},
		{"plant/#", "plant", true},
		{"plant/#", "plant/a/b/c", true},
		{"#", "anything/at/all", true},
		{"#", "$SYS/broker", false},
		{"+/status", "$SYS/status", false},
		{"$SYS/#", "$SYS/broker/load", true},
		{"a/b", "a/b", true},
		{"a/b", "a/b/c", false},
		{"a/b/c", "a/b", false},
		{"a/+", "a/", true},
		{"+/+", "/x", true},
		{"spBv1.0/+/NDATA/+", "spBv1.0/g1/NDATA/edge1", true},
		{"spBv1.0/+/NDATA/+", "spBv1.0/g1/NDATA/edge1/dev", false},
	}
	for _, tt := range tests {
		if got := Match(tt.filter, tt.topic); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.filter, tt.topic, got, tt.want)
		}
	}
}

func TestValidFilter(t *testing.T) {
	for _, ok := range []string{"a", "a/b", "+", "#", "a/+/b", "a/#", "+/+/#", "/"} {
		if err := ValidFilter(ok); err != nil {
			t.Errorf("ValidFilter(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a/#/b", "a#", "a/b+", "a/+b/c", "a\x00b"} {
		if err := ValidFilter(bad); err == nil {
			t.Errorf("ValidFilter(%q) accepted", bad)
		}
	}
	if err := ValidName("a/+/b"); err == nil {
		t.Error("ValidName accepted a wildcard")
	}
}

func FuzzMatch(f *testing.F) {
	f.Add("a/+/#", "a/b/c")
	f.Fuzz(func(t *testing.T, filter, topic string) {
		if ValidFilter(filter) != nil {
			return
		}
		got := Match(filter, topic)
		if filter == topic && ValidName(topic) == nil && got != true {
			t.Fatalf("a name does not match itself as a filter: %q", topic)
		}
	})
}

func TestOverlap(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"+/#", "ember/v1/dev/#", true},
		{"#", "ember/v1/dev/#", true},
		{"ember/+/dev/result/x", "ember/v1/dev/#", true},
		{"+/v1/+/infer/+", "ember/v1/dev/#", true},
		{"ember/v1", "ember/v1/dev/#", false},
		{"ember/v1/+", "ember/v1/dev/#", true}, // ember/v1/dev itself
		{"ember/v2/#", "ember/v1/dev/#", false},
		{"ember/v1/other/#", "ember/v1/dev/#", false},
		{"plant/line3/+/alarm", "ember/v1/dev/#", false},
		{"+/line3/#", "ember/v1/dev/#", false},
		{"+/+/+/+", "ember/v1/dev/#", true},
		{"+/+", "ember/v1/dev/#", false},
		{"a/b", "a/b", true},
		{"a/+", "+/b", true},
		{"a/+/c", "a/b", false},
		{"$SYS/#", "#", false},
		{"$SYS/#", "$SYS/+", true},
		{"+/x", "$SYS/x", false},
	}
	for _, tt := range tests {
		if got := Overlap(tt.a, tt.b); got != tt.want {
			t.Errorf("Overlap(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := Overlap(tt.b, tt.a); got != tt.want {
			t.Errorf("Overlap(%q, %q) = %v, want %v", tt.b, tt.a, got, tt.want)
		}
	}
}

func FuzzOverlap(f *testing.F) {
	f.Add("a/+/#", "a/b/c", "a/b/c")
	f.Fuzz(func(t *testing.T, a, b, name string) {
		if ValidFilter(a) != nil || ValidFilter(b) != nil || ValidName(name) != nil {
			return
		}
		if Match(a, name) && Match(b, name) && !Overlap(a, b) {
			t.Fatalf("%q matches %q and %q, but Overlap says they do not overlap", name, a, b)
		}
	})
}
