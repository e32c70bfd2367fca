package jobs

import (
	"sync"

	"github.com/ember-edge/ember/daemon/store"
)

// Events fans job state changes out to watchers (JobService.Watch). A
// watcher that falls behind loses events rather than slowing the queue:
// its channel is closed and it must re-list.
type Events struct {
	mu   sync.Mutex
	subs map[chan store.Job]struct{}
}

func newEvents() *Events { return &Events{subs: map[chan store.Job]struct{}{}} }

func (b *Events) publish(j store.Job) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- j:
		default:
			delete(b.subs, ch)
			close(ch)
		}
	}
}

// Watch returns a channel of job changes and a function that stops them.
// The channel is closed if the watcher falls more than 256 events behind.
func (b *Events) Watch() (<-chan store.Job, func()) {
	ch := make(chan store.Job, 256)
	b.mu.Lock()
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	return ch, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, ok := b.subs[ch]; ok {
			delete(b.subs, ch)
			close(ch)
		}
	}
}
