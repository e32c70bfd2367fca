package store

import (
	"context"

	bolt "go.etcd.io/bbolt"
)

// commitReq is one caller's write waiting for a group commit.
type commitReq struct {
	fn   func(*bolt.Tx) error
	done chan error
}

// commit runs fn in a read-write transaction shared with the other writes
// queued at the same time (group commit): many callers, one fsync. It
// returns once the transaction is durable on disk, or with fn's error.
//
// fn may be called more than once and must only touch the transaction:
// when the shared transaction fails, each of its writes is retried in a
// transaction of its own, so that one bad write cannot fail the others.
func (s *Store) commit(ctx context.Context, fn func(*bolt.Tx) error) error {
	wait, err := s.queue(ctx, fn)
	if err != nil {
		return err
	}
	return wait()
}

// queue hands fn to the group commit and returns at once with a wait
// for its outcome. Writes queued one after another commit in that order
// (in the same transaction or a later one), so a caller may queue its
// next write before the last is durable and still keep them in order.
func (s *Store) queue(ctx context.Context, fn func(*bolt.Tx) error) (wait func() error, err error) {
	req := &commitReq{fn: fn, done: make(chan error, 1)}
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return nil, ErrClosed
	}
	select {
	case s.commits <- req:
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return nil, ctx.Err()
	}
	s.closeMu.RUnlock()
	// Once queued, the write is not abandoned even if ctx ends: the caller
	// must learn whether it became durable.
	return func() error { return <-req.done }, nil
}

// committer owns group commits: it takes the first waiting write, every
// other write queued by then (up to MaxBatch), and commits them together.
// No timer delays a lone write: batches form while the previous fsync
// runs, so they grow with the load and latency stays one fsync at rest.
func (s *Store) committer() {
	defer close(s.stopped)
	batch := make([]*commitReq, 0, s.opts.MaxBatch)
	for {
		select {
		case <-s.stop:
			// Close lets no new write in; commit what was queued.
			for len(s.commits) > 0 {
				s.runBatch(s.drain(batch[:0]))
			}
			return
		case req := <-s.commits:
			batch = append(batch[:0], req)
		}
		s.runBatch(s.drain(batch))
	}
}

func (s *Store) runBatch(batch []*commitReq) {
	s.batches.Add(1)
	s.batched.Add(uint64(len(batch)))
	failed := -1
	err := s.update(func(tx *bolt.Tx) error {
		for i, req := range batch {
			if err := req.fn(tx); err != nil {
				failed = i
				return err
			}
		}
		return nil
	})
	if err == nil {
		for _, req := range batch {
			req.done <- nil
		}
		return
	}
	if failed < 0 || len(batch) == 1 {
		// The commit itself failed (a full disk, say): nothing was
		// written, and every write in the batch hears why.
		for _, req := range batch {
			req.done <- err
		}
		return
	}
	// One write failed: retry each alone so the others still land.
	for _, req := range batch {
		req.done <- s.update(req.fn)
	}
}

// drain takes up to MaxBatch queued writes without waiting.
func (s *Store) drain(batch []*commitReq) []*commitReq {
	for len(batch) < s.opts.MaxBatch {
		select {
		case req := <-s.commits:
			batch = append(batch, req)
		default:
			return batch
		}
	}
	return batch
}

// CommitStats count group commits: Writes in Batches transactions.
type CommitStats struct {
	Batches uint64
	Writes  uint64
}

// CommitStats returns the group-commit counters.
func (s *Store) CommitStats() CommitStats {
	return CommitStats{Batches: s.batches.Load(), Writes: s.batched.Load()}
}
