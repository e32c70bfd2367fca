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
