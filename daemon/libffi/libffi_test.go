package libffi

import (
	"strings"
	"testing"
)

func TestCheckFindsSystemLibffi(t *testing.T) {
	if err := Check(Name); err != nil {
		t.Fatalf("Check(%q) = %v; the test machine must have libffi8 installed", Name, err)
	}
}

func TestCheckNamesTheFixWhenMissing(t *testing.T) {
	err := Check("libffi-does-not-exist.so.99")
	if err == nil {
		t.Fatal("Check of a missing library succeeded")
	}
	for _, want := range []string{"libffi-does-not-exist.so.99", "apt-get install libffi8"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
