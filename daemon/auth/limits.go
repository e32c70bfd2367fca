package auth

import (
	"fmt"
	"sync"
)

// Limits are the per-role bounds on what one identity may ask of the
// engine. A role without an entry is not bounded beyond the engine's own
// limits.
type Limits struct {
	// MaxTokens caps max_tokens of one request.
	MaxTokens map[Role]int
	// MaxStreams caps the inference calls one identity runs at once.
	MaxStreams map[Role]int
}

// LimitError says which limit a request went past; daemon/api reports
// it as RESOURCE_EXHAUSTED.
type LimitError struct {
	// Key is the config key of the limit: "auth.max_tokens.technician".
	Key string
	// What names the quantity: "max_tokens", "concurrent inference calls".
	What  string
	Limit int
	Asked int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s %d is over %s (%d)", e.What, e.Asked, e.Key, e.Limit)
}

// CheckMaxTokens returns the max_tokens to use for a request that asked
// for asked (0: the engine's default, def), or a *LimitError when asked
// is over role's cap. A default above the cap is lowered to it.
func (l Limits) CheckMaxTokens(role Role, asked, def int) (int, error) {
	limit, ok := l.MaxTokens[role]
	if !ok || limit <= 0 {
		return asked, nil
	}
	if asked > limit {
		return 0, &LimitError{Key: "auth.max_tokens." + role.String(), What: "max_tokens", Limit: limit, Asked: asked}
	}
	if asked <= 0 {
		return min(def, limit), nil
	}
	return asked, nil
}

// Streams counts the inference calls each identity has running.
type Streams struct {
	limits Limits
	mu     sync.Mutex
	active map[string]int
}

// NewStreams returns a counter enforcing l.MaxStreams.
func NewStreams(l Limits) *Streams { return &Streams{limits: l, active: map[string]int{}} }

// Acquire counts one more call for id and returns the function that
// ends it, or a *LimitError when id already runs as many as its role may.
func (s *Streams) Acquire(id Identity) (release func(), err error) {
	limit, ok := s.limits.MaxStreams[id.Role]
	key := id.Key()
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok && limit > 0 && s.active[key] >= limit {
		return nil, &LimitError{Key: "auth.max_streams." + id.Role.String(), What: "concurrent inference calls", Limit: limit, Asked: s.active[key] + 1}
	}
	s.active[key]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.active[key]--; s.active[key] <= 0 {
				delete(s.active, key)
			}
		})
	}, nil
}
