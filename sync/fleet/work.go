package fleet

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ember-edge/ember/internal/durable"
)

// The side effects, one per phase. Each runs on its own goroutine with a
// snapshot of the state, touches nothing the state does not name, and
// ends with an event (or with an error and no event when ctx ended). Each
// is idempotent: after a restart the updater runs the same one again.

// artifactPath is where an artifact's verified file lives: named by its
// sha256, so releases that share a file share it on disk and an artifact
// already here is never fetched again.
func (u *Updater) artifactPath(a Artifact) string {
	ext := ".bin"
	switch a.Kind {
	case KindModel:
		ext = ".gguf"
	case KindPipelines:
		ext = ".pipelines"
	}
	return filepath.Join(u.opts.Dir, "artifacts", a.SHA256+ext)
}

// partialPath is where an artifact downloads to before verification.
func (u *Updater) partialPath(a Artifact) string {
	return filepath.Join(u.opts.Dir, "partial", a.SHA256)
}

// hasFile reports whether path is a regular file of size bytes.
func hasFile(path string, size int64) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Size() == size
}

func (u *Updater) download(ctx context.Context, st State) outcome {
	t := st.Target
	i := st.NextArtifact
	inst := t.Artifacts[i]
	var before, total int64
	for j, a := range t.Artifacts {
		total += a.Size
		if j < i {
			before += a.Size
		}
	}
	u.updateStatus(func(s *Status) { s.setProgress(before, total) })
	if hasFile(inst.Path, inst.Size) {
		return outcome{ev: EvDownloaded{Index: i}} // kept from an earlier release
	}
	dl := *u.dl
	dl.opts.Progress = func(done, _ int64) {
		u.updateStatus(func(s *Status) { s.setProgress(before+done, total) })
	}
	dl.opts.Retry = func(err error, _ time.Duration) {
		u.updateStatus(func(s *Status) { s.LastError = err.Error() })
	}
	err := dl.Fetch(ctx, inst.URL, inst.Size, u.partialPath(inst.Artifact))
	switch {
	case err == nil:
		u.updateStatus(func(s *Status) { s.setProgress(before+inst.Size, total); s.LastError = "" })
		return outcome{ev: EvDownloaded{Index: i}}
	case IsPermanent(err):
		return outcome{ev: EvFail{Reason: fmt.Sprintf("download %s %q of version %d: %v", inst.Kind, inst.Name, t.Version, err)}}
	}
	return outcome{err: err}
}

// verify checks every artifact's size and sha256 and moves it into place:
// partial file fsynced (by the downloader), renamed, both directories
// fsynced.
func (u *Updater) verify(ctx context.Context, st State) outcome {
	t := st.Target
	for _, inst := range t.Artifacts {
		if err := ctx.Err(); err != nil {
			return outcome{err: err}
		}
		ev, err := u.verifyOne(ctx, t.Version, inst)
		if ev != nil || err != nil {
			return outcome{ev: ev, err: err}
		}
	}
	return outcome{ev: EvVerified{}}
}

// verifyOne returns (nil, nil) when inst is in place and good, an EvFail
// when it is not and cannot be, or an error when ctx ended.
func (u *Updater) verifyOne(ctx context.Context, version int64, inst Installed) (Event, error) {
	fail := func(err error) Event {
		return EvFail{Reason: fmt.Sprintf("verify %s %q of version %d: %v", inst.Kind, inst.Name, version, err)}
	}
	if _, err := os.Stat(inst.Path); err == nil {
		// In place already: from an earlier release, or verified before a
		// restart. Hash it again all the same; it is about to run.
		if err := checkFile(ctx, inst.Path, inst.Size, inst.SHA256); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if errors.Is(err, ErrDigestMismatch) || errors.Is(err, ErrSizeMismatch) {
				os.Remove(inst.Path)
				durable.SyncDir(filepath.Dir(inst.Path))
			}
			return fail(err), nil
		}
		return nil, nil
	}
	part := u.partialPath(inst.Artifact)
	if err := checkFile(ctx, part, inst.Size, inst.SHA256); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, ErrDigestMismatch) {
			// Fetching the same bytes again would give the same answer.
			os.Remove(part)
			os.Remove(progressPath(part))
		}
		return fail(err), nil
	}
	if err := os.Rename(part, inst.Path); err != nil {
		return fail(err), nil
	}
	if err := durable.SyncDir(filepath.Dir(inst.Path)); err != nil {
		return fail(err), nil
	}
	if err := durable.SyncDir(filepath.Dir(part)); err != nil {
		return fail(err), nil
	}
	if err := u.point("verify-rename"); err != nil {
		return nil, err
	}
	os.Remove(progressPath(part))
	return nil, nil
}

// checkFile hashes path and compares its size and sha256.
func checkFile(ctx context.Context, path string, size int64, sum string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != size {
		return fmt.Errorf("%w: %s is %d bytes, the manifest says %d", ErrSizeMismatch, filepath.Base(path), fi.Size(), size)
	}
	h := sha256.New()
	if _, err := io.Copy(h, ctxReader{ctx, f}); err != nil {
		return err
	}
	var got [32]byte
	h.Sum(got[:0])
	if hexDigest(got) != sum {
		return fmt.Errorf("%w: got %s, want %s", ErrDigestMismatch, hexDigest(got), sum)
	}
	return nil
}

// ctxReader stops a long read (hashing gigabytes) when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// activate makes the one switch.
func (u *Updater) activate(ctx context.Context, st State) outcome {
	if err := u.point("before-activate"); err != nil {
		return outcome{err: err}
	}
	err := u.opts.Activator.Activate(ctx, st.Target.Release)
	if ctx.Err() != nil {
		return outcome{err: ctx.Err()}
	}
	if err != nil {
		return outcome{ev: EvRollback{Reason: fmt.Sprintf("activate version %d: %v", st.Target.Version, err)}}
	}
	if err := u.point("after-activate"); err != nil {
		return outcome{err: err}
	}
	return outcome{ev: EvActivated{}}
}

// check runs the target's checks, in order, before it takes traffic.
func (u *Updater) check(ctx context.Context, st State) outcome {
	t := st.Target
	for i, c := range t.Checks {
		if err := u.point(fmt.Sprintf("check-%d", i)); err != nil {
			return outcome{err: err}
		}
		cctx, cancel := context.WithTimeout(ctx, u.opts.CheckTimeout)
		res, err := u.opts.Checker.Run(cctx, t.Release, c)
		cancel()
		if ctx.Err() != nil {
			return outcome{err: ctx.Err()}
		}
		if err == nil {
			err = evaluateCheck(c, res, u.opts.Schema)
		} else {
			err = fmt.Errorf("%w: %w", ErrCheckFailed, err)
		}
		if err != nil {
			return outcome{ev: EvRollback{Reason: fmt.Sprintf("version %d: check %d (%s): %v", t.Version, i, abbreviate(c.Prompt, 40), err)}}
		}
	}
	return outcome{ev: EvChecksPassed{}}
}

// commit opens the target to traffic.
func (u *Updater) commit(ctx context.Context, st State) outcome {
	if err := u.point("before-commit"); err != nil {
		return outcome{err: err}
	}
	err := u.opts.Activator.Commit(ctx, st.Target.Release)
	if ctx.Err() != nil {
		return outcome{err: ctx.Err()}
	}
	if err != nil {
		return outcome{ev: EvRollback{Reason: fmt.Sprintf("commit version %d: %v", st.Target.Version, err)}}
	}
	if err := u.point("after-commit"); err != nil {
		return outcome{err: err}
	}
	return outcome{ev: EvCommitted{}}
}

// rollback switches back to the rollback target, retrying until it works
// or ctx ends: the old release is all there is to go back to.
func (u *Updater) rollback(ctx context.Context, st State) error {
	to := st.Current
	if st.RollbackTo != nil {
		to = *st.RollbackTo
	}
	return u.retrying(ctx, "rollback", func() error {
		if err := u.point("before-rollback"); err != nil {
			return err
		}
		if err := u.opts.Activator.Rollback(ctx, to); err != nil {
			return fmt.Errorf("roll back to version %d: %w", to.Version, err)
		}
		return u.point("after-rollback")
	})
}

// retire tells the daemon a release is leaving, then deletes its files
// that no other release uses.
func (u *Updater) retire(ctx context.Context, st State) outcome {
	rel := st.Retiring[0]
	if len(rel.Artifacts) > 0 {
		err := u.retrying(ctx, "retire", func() error {
			if err := u.point("before-retire"); err != nil {
				return err
			}
			if err := u.opts.Activator.Retire(ctx, rel); err != nil {
				return fmt.Errorf("retire version %d: %w", rel.Version, err)
			}
			return u.point("after-retire")
		})
		if err != nil {
			return outcome{err: err}
		}
	}
	used := referenced(st, rel.Version)
	for _, a := range rel.Artifacts {
		if used[a.Path] {
			continue
		}
		if err := os.Remove(a.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			u.log.Warn("fleet: remove retired file", "path", a.Path, "err", err)
		}
		if err := u.point("retire-remove"); err != nil {
			return outcome{err: err}
		}
	}
	durable.SyncDir(filepath.Join(u.opts.Dir, "artifacts"))
	return outcome{ev: EvRetired{Version: rel.Version}}
}

// referenced returns the paths of every release in st except the retiring
// one of version skip (which is gone once retired).
func referenced(st State, skip int64) map[string]bool {
	used := map[string]bool{}
	add := func(r Release) {
		for _, a := range r.Artifacts {
			used[a.Path] = true
		}
	}
	add(st.Current)
	for _, r := range st.Kept {
		add(r)
	}
	if st.Target != nil {
		add(st.Target.Release)
	}
	if st.RollbackTo != nil {
		add(*st.RollbackTo)
	}
	for _, r := range st.Retiring {
		if r.Version != skip {
			add(r)
		}
	}
	return used
}

// sweep removes what no release names: artifacts of releases retired
// before a crash finished deleting them, partial downloads of targets
// that were replaced or failed, temporary files. It runs only at rest.
func (u *Updater) sweep(ctx context.Context, st State) outcome {
	used := referenced(st, -1)
	for _, sub := range []string{"artifacts", "partial"} {
		dir := filepath.Join(u.opts.Dir, sub)
		entries, err := os.ReadDir(dir)
		if err != nil {
			u.log.Warn("fleet: sweep", "dir", dir, "err", err)
			continue
		}
		removed := false
		for _, e := range entries {
			if ctx.Err() != nil {
				return outcome{err: ctx.Err()}
			}
			path := filepath.Join(dir, e.Name())
			if used[path] || e.IsDir() {
				continue
			}
			if err := os.Remove(path); err != nil {
				u.log.Warn("fleet: sweep", "path", path, "err", err)
				continue
			}
			removed = true
			u.log.Info("fleet: removed unused file", "path", path)
			if err := u.point("sweep-remove"); err != nil {
				return outcome{err: err}
			}
		}
		if removed {
			durable.SyncDir(dir)
		}
	}
	return outcome{}
}

// retrying runs fn until it succeeds, with doubling backoff between
// failures, reporting each as the last error. It returns ctx's error, or
// a simulated crash.
func (u *Updater) retrying(ctx context.Context, what string, fn func() error) error {
	bo := newBackoff(u.opts.Download.BackoffMin, u.opts.Download.BackoffMax)
	if bo.min <= 0 {
		bo.min = 1e9
	}
	if bo.max < bo.min {
		bo.max = max(bo.min, 5*60e9)
	}
	for {
		err := fn()
		if err == nil {
			u.updateStatus(func(s *Status) { s.LastError = "" })
			return nil
		}
		if errors.Is(err, errCrashed) || ctx.Err() != nil {
			return errors.Join(err, ctx.Err())
		}
		wait := bo.next()
		u.log.Warn("fleet: step failed; retrying", "step", what, "err", err, "retry_in", wait)
		u.updateStatus(func(s *Status) { s.LastError = err.Error() })
		if err := sleep(ctx, u.clock, wait); err != nil {
			return err
		}
	}
}

// abbreviate shortens s to n runes for a reason line.
func abbreviate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) <= n {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q", string(r[:n])+"…")
}
