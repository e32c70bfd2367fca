package inference

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestIsTransientFollowsTheErrorsType(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"queue full", ErrQueueFull, true},
		{"model unloaded, wrapped", fmt.Errorf("model %q: %w", "m", ErrUnloaded), true},
		{"decode failed, wrapped twice", fmt.Errorf("job 7: %w", fmt.Errorf("%w: no room left in the KV cache", ErrDecode)), true},
		{"model not loaded", ErrModelNotLoaded, true},
		{"invalid request", Invalid("max_tokens %d must not be negative", -1), false},
		{"prompt too long", &PromptTooLongError{Tokens: 9, Context: 8}, false},
		{"not enough memory", ErrInsufficientMemory, false},
		{"an error nobody classified", errors.New("disk on fire"), false},
		{"marked temporary", Temporary(errors.New("registry read failed")), true},
		{"nil", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := IsTransient(c.err); got != c.want {
				t.Errorf("IsTransient(%v) = %v, want %v", c.err, got, c.want)
			}
		})
	}
}

func TestSentinelsKeepTheirIdentity(t *testing.T) {
	err := fmt.Errorf("load: %w", Temporary(ErrQueueFull))
	if !errors.Is(err, ErrQueueFull) {
		t.Fatal("errors.Is lost ErrQueueFull through Temporary")
	}
	if !errors.Is(&PromptTooLongError{}, ErrInvalidRequest) {
		t.Fatal("a prompt too long is an invalid request")
	}
	if Temporary(nil) != nil {
		t.Fatal("Temporary(nil) must be nil")
	}
}

func TestSamplingValidateNamesTheParameter(t *testing.T) {
	s := DefaultSampling()
	if err := s.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	s.TopP = 2
	err := s.Validate()
	if !errors.Is(err, ErrInvalidRequest) || err == nil || !strings.Contains(err.Error(), "top_p") {
		t.Fatalf("top_p 2: %v", err)
	}
}
