package engine

import (
	"context"
	"sync"
)

// event is one thing a sequence reports to its caller: a piece of text,
// or, last, the result or the error that ended it.
type event struct {
	text   string
	result *Result
	err    error
}

// stream carries events from the scheduler to one caller. Pushing never
// blocks, so a slow reader can never stall the scheduler (and through it
// every other request); the buffer is bounded by the request's max_tokens.
type stream struct {
	mu     sync.Mutex
	events []event
	ready  chan struct{}
}

func newStream() *stream { return &stream{ready: make(chan struct{}, 1)} }

func (s *stream) push(ev event) {
	s.mu.Lock()
	s.events = append(s.events, ev)
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// next waits for the next events, returning all that have arrived.
func (s *stream) next(ctx context.Context, into []event) ([]event, error) {
	for {
		s.mu.Lock()
		if len(s.events) > 0 {
			into = append(into[:0], s.events...)
			s.events = s.events[:0]
			s.mu.Unlock()
			return into, nil
		}
		s.mu.Unlock()
		select {
		case <-s.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
