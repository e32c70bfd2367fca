package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ember-edge/ember/daemon/store"
)

// Priority is the outbox priority class of the entries' upstream copies:
// above routine results, below alarms.
const Priority = 7

// Options configure a Log.
type Options struct {
	Store *store.Store
	// Key signs checkpoints (LoadKey).
	Key      ed25519.PrivateKey
	DeviceID string
	// Upstream, set when an uplink is configured, gives every entry an
	// outbox copy (kind "audit") for the uplink to send, and lets an entry
	// be pruned only once its copy was synced. Without it the chain alone
	// is kept, and pruned to MaxEntries.
	Upstream bool
	// Inference records the metadata of inference requests
	// (audit.inference: metadata); false records none.
	Inference bool
	// MaxEntries bounds the chain (with Upstream, only synced entries go);
	// 0 means 100,000.
	MaxEntries int
	// CheckpointInterval is how often Run signs the head; 0 means 10m.
	CheckpointInterval time.Duration
	Logger             *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Log appends to the audit chain. Its methods may be called from any
// goroutine; a nil *Log records nothing.
type Log struct {
	opts Options
	log  *slog.Logger

	written, failures atomic.Uint64
	mu                sync.Mutex
	lastErr           string
}

// New returns a log writing to opts.Store.
func New(opts Options) *Log {
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 100000
	}
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = 10 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Log{opts: opts, log: opts.Logger}
}

// PublicKey is the key that verifies this device's checkpoints.
func (l *Log) PublicKey() ed25519.PublicKey { return l.opts.Key.Public().(ed25519.PublicKey) }

// Record writes one action. A failure to write is logged and counted
// (Stats), not returned: Record is for callers that have nobody to tell,
// such as the fleet updater and the daemon itself. Callers that answer a
// client use Write and fail the call instead.
func (l *Log) Record(ctx context.Context, action, actor string, err error, details map[string]any) {
	_ = l.Write(ctx, action, actor, err, details)
}

// Write appends one action to the chain (and its upstream copy to the
// outbox) and returns once it is durable, or with the reason it is not,
// which it also logs and counts. err is the action's outcome.
func (l *Log) Write(ctx context.Context, action, actor string, err error, details map[string]any) error {
	if l == nil {
		return nil
	}
	e := Entry{Action: action, Actor: actor, OK: err == nil, Details: details, DeviceID: l.opts.DeviceID}
	if err != nil {
		e.Error = err.Error()
	}
	now := l.opts.Now()
	build := func(head store.AuditHead, r *store.Record) ([]byte, []byte, error) {
		e := e
		e.Index, e.Prev, e.At, e.Boot = head.Last+1, prevHash(head), now.UTC(), l.opts.Store.Boot()
		if r != nil {
			e.Seq, e.At, e.Boot = r.Seq, r.CreatedAt.UTC(), r.Boot
		}
		data, err := e.Encode()
		if err != nil {
			return nil, nil, err
		}
		if r != nil {
			if r.Data, err = json.Marshal(Shipped{Entry: e, Hash: Hash(data)}); err != nil {
				return nil, nil, err
			}
		}
		return data, nil, nil
	}
	var rec *store.Record
	if l.opts.Upstream {
		rec = &store.Record{Kind: store.KindAudit, DeviceID: l.opts.DeviceID, Priority: Priority, Classification: store.ClassShared}
	}
	head, werr := l.opts.Store.AppendAudit(context.WithoutCancel(ctx), rec, build, now)
	if werr != nil {
		werr = fmt.Errorf("write audit entry %q: %w", action, werr)
		l.failures.Add(1)
		l.mu.Lock()
		l.lastErr = werr.Error()
		l.mu.Unlock()
		l.log.Error("audit entry not written", "action", action, "actor", actor, "err", werr)
		return werr
	}
	l.written.Add(1)
	l.log.Info("audit", "action", action, "actor", actor, "ok", e.OK, "index", head.Last)
	return nil
}

// InferenceEnabled reports whether inference requests are recorded.
func (l *Log) InferenceEnabled() bool { return l != nil && l.opts.Inference }

// Inference records one inference request's metadata, when enabled:
// action (say "inference.chat"), who asked, the model, the prompt tokens,
// the outcome, and any extra details. Never the prompt or the output.
func (l *Log) Inference(ctx context.Context, action, actor, model string, promptTokens int, err error, extra map[string]any) error {
	if !l.InferenceEnabled() {
		return nil
	}
	d := map[string]any{"model": model, "prompt_tokens": promptTokens}
	for k, v := range extra {
		d[k] = v
	}
	return l.Write(ctx, action, actor, err, d)
}

// Stats are the log's counters since start.
type Stats struct {
	Written, Failures uint64
	// LastError is the last write failure, "" if none.
	LastError string
}

// Stats returns the counters.
func (l *Log) Stats() Stats {
	if l == nil {
		return Stats{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return Stats{Written: l.written.Load(), Failures: l.failures.Load(), LastError: l.lastErr}
}

// Run signs the chain's head every CheckpointInterval and prunes the
// chain to its bound, until ctx ends; then it signs the head once more.
func (l *Log) Run(ctx context.Context) error {
	t := time.NewTicker(l.opts.CheckpointInterval)
	defer t.Stop()
	for {
		if err := l.Maintain(); err != nil {
			l.log.Error("audit maintenance", "err", err)
		}
		select {
		case <-ctx.Done():
			if _, err := l.Checkpoint(); err != nil {
				l.log.Warn("audit checkpoint at stop", "err", err)
			}
			return nil
		case <-t.C:
		}
	}
}

// Maintain prunes the chain to its bound (a signed checkpoint marks
// where) and signs the head.
func (l *Log) Maintain() error {
	if _, err := l.Prune(); err != nil {
		return err
	}
	_, err := l.Checkpoint()
	return err
}

// Checkpoint signs the chain's head unless it is signed already, and
// reports whether it wrote one.
func (l *Log) Checkpoint() (bool, error) {
	_, wrote, err := l.opts.Store.CheckpointAudit(func(h store.AuditHead) ([]byte, error) {
		return signCheckpoint(l.opts.Key, h.Last, h.Hash, l.opts.Now())
	})
	if err != nil {
		return false, fmt.Errorf("audit checkpoint: %w", err)
	}
	return wrote, nil
}

// pruneBatch bounds the entries one pruning transaction deletes.
const pruneBatch = 10000

// Prune deletes the oldest entries above MaxEntries, only those whose
// upstream copy the uplink has synced when Upstream is set, and returns
// how many went.
func (l *Log) Prune() (int, error) {
	st := l.opts.Store
	head, err := st.AuditHead()
	if err != nil {
		return 0, err
	}
	if head.Last < head.First || head.Last-head.First+1 <= uint64(l.opts.MaxEntries) {
		return 0, nil
	}
	over := head.Last - head.First + 1 - uint64(l.opts.MaxEntries)
	upTo := head.First + min(over, pruneBatch) - 1
	if l.opts.Upstream {
		if upTo, err = l.syncedUpTo(head.First, upTo); err != nil {
			return 0, err
		}
	}
	n, err := st.PruneAudit(upTo, l.opts.MaxEntries, pruneBatch, func(index uint64, hash [32]byte) ([]byte, error) {
		return signCheckpoint(l.opts.Key, index, hash, l.opts.Now())
	})
	if err != nil {
		return 0, fmt.Errorf("prune audit chain: %w", err)
	}
	if n > 0 {
		l.log.Info("audit chain pruned", "entries", n, "first", upTo+1)
	}
	return n, nil
}

// syncedUpTo returns the last index from first to at most upTo whose
// entries' upstream copies are all synced; first-1 if the first is not.
// An entry without a copy (written while no uplink was configured) can
// never be synced, and counts as synced.
func (l *Log) syncedUpTo(first, upTo uint64) (uint64, error) {
	cursor, err := l.opts.Store.SyncCursor(Priority)
	if err != nil {
		return 0, err
	}
	last := first - 1
	for last < upTo {
		es, err := l.opts.Store.AuditEntries(last, int(min(upTo-last, 1000)))
		if err != nil || len(es) == 0 {
			return last, err
		}
		for _, se := range es {
			e, err := DecodeEntry(se.Data)
			if err != nil || e.Index != se.Index || e.Seq > cursor {
				// A bad entry is never pruned away: verify must see it.
				return last, nil
			}
			last = se.Index
		}
	}
	return min(last, upTo), nil
}

// List returns up to max entries after index after, decoded. An entry
// that does not decode is returned with its index and action "?" so that
// a listing never hides one; Verify says what is wrong with it.
func (l *Log) List(after uint64, max int) ([]Entry, error) {
	raw, err := l.opts.Store.AuditEntries(after, max)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(raw))
	for _, r := range raw {
		e, err := DecodeEntry(r.Data)
		if err != nil {
			e = Entry{Index: r.Index, Action: "?", Error: err.Error()}
		}
		out = append(out, e)
	}
	return out, nil
}

func prevHash(h store.AuditHead) string {
	if h.Last == 0 {
		return zeroHash
	}
	return hex.EncodeToString(h.Hash[:])
}
