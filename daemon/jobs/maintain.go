package jobs

import (
	"context"
	"time"
)

// MaintainOptions say how the store is kept within its bounds.
type MaintainOptions struct {
	Every        time.Duration
	JobRetention time.Duration
	CompactMin   int64
	CompactRatio float64
	// SyncRetention drops records this long after the uplink synced them;
	// 0 keeps them (to the store limits).
	SyncRetention time.Duration
}

// Maintainer keeps the store bounded: it prunes finished jobs and
// expired dedup entries, prunes the outbox to its limits, compacts the
// file when pruning left enough free pages, and requeues jobs whose
// result could not be written (a full disk).
type Maintainer struct {
	*core
	// running reports whether a job is running in this process (its
	// result is on its way, so it is no orphan).
	running func(id uint64) bool
	wake    func()
}

// Run maintains the store every o.Every until ctx ends.
func (m *Maintainer) Run(ctx context.Context, o MaintainOptions) error {
	if o.Every <= 0 {
		o.Every = time.Minute
	}
	t := time.NewTicker(o.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		m.once(o)
	}
}

func (m *Maintainer) once(o MaintainOptions) {
	now := m.opts.Now()
	if o.JobRetention > 0 {
		if n, err := m.st.PruneJobs(now.Add(-o.JobRetention), now, 10000); err != nil {
			m.log.Warn("prune jobs", "err", err)
		} else if n > 0 {
			m.log.Debug("pruned finished jobs", "jobs", n)
		}
	}
	if o.SyncRetention > 0 {
		if n, err := m.st.PruneSynced(now.Add(-o.SyncRetention), 10000); err != nil {
			m.log.Warn("prune synced records", "err", err)
		} else if n > 0 {
			m.log.Debug("pruned synced records", "records", n)
		}
	}
	if n, err := m.st.PruneOutbox(m.opts.Limits, now, 10000, nil); err != nil {
		m.log.Warn("prune outbox", "err", err)
	} else if n > 0 {
		m.log.Info("pruned outbox records", "records", n)
	}
	if did, err := m.st.CompactIfWasteful(o.CompactMin, o.CompactRatio); err != nil {
		m.log.Warn("compact store", "err", err)
	} else if did {
		m.log.Info("compacted the store file")
	}
	if n, err := m.st.RequeueOrphans(m.running, now); err != nil {
		m.log.Warn("requeue jobs", "err", err)
	} else if n > 0 {
		m.log.Info("requeued jobs whose result could not be written", "jobs", n)
		m.wake()
	}
}
