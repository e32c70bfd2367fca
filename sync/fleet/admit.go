package fleet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// evaluate verifies the effective desired payload (the device's own when
// it has one, else the fleet's) and turns it into an event, or into a
// rejection that only the last error and the report show.
func (r *runner) evaluate(ctx context.Context) error {
	u := r.u
	topic := u.topics.deviceDesired
	payload := r.desired[topic]
	if len(payload) == 0 {
		topic = u.topics.fleetDesired
		payload = r.desired[topic]
	}
	if len(payload) == 0 {
		return nil
	}
	v, err := Verify(payload, u.opts.Keys)
	if err == nil {
		err = r.checkVersion(v)
	}
	if err != nil {
		if errors.Is(err, errAlreadyHave) {
			return nil
		}
		u.log.Warn("fleet: desired state refused", "topic", topic, "err", err)
		u.updateStatus(func(s *Status) { s.LastError = fmt.Sprintf("refused %s: %v", topic, err) })
		r.report = true
		return nil
	}
	ev := u.admit(v)
	if ref, ok := ev.(EvRefuse); ok {
		if old := u.st.Refused; old != nil && old.Digest == ref.Refusal.Digest && old.Reason == ref.Refusal.Reason && u.st.Phase == PhaseFailed {
			return nil // refused for the same reason before
		}
		u.log.Warn("fleet: manifest refused", "version", ref.Refusal.Version, "reason", ref.Refusal.Reason)
	}
	if u.st.Phase.preSwitch() {
		if err := r.cancelWork(); err != nil {
			return err
		}
		u.log.Info("fleet: newer manifest replaces the target", "old", targetVersion(u.st), "new", v.Manifest.Version)
	}
	if err := u.apply(ev); err != nil {
		return err
	}
	u.updateStatus(func(s *Status) { s.LastError = "" })
	r.report = true
	return nil
}

var errAlreadyHave = errors.New("already accepted")

// checkVersion is the rollback protection.
func (r *runner) checkVersion(v *Verified) error {
	st := r.u.st
	ver := v.Manifest.Version
	switch {
	case ver < st.Highest:
		return fmt.Errorf("%w: version %d is older than %d, the highest accepted (a replay or a downgrade)", ErrNotNewer, ver, st.Highest)
	case ver == st.Highest && v.Digest == st.HighestDigest:
		return errAlreadyHave
	case ver == st.Highest:
		return fmt.Errorf("%w: version %d was already accepted with other content (digest %.12s, now %.12s)", ErrNotNewer, ver, st.HighestDigest, v.Digest)
	}
	return nil
}

// admit decides whether this device can take a verified, newer manifest:
// licenses, requirements, schema checks and free disk, all before any
// download.
func (u *Updater) admit(v *Verified) Event {
	m := v.Manifest
	var errs []string
	for i, a := range m.Artifacts {
		if a.Kind == KindModel && len(u.opts.AllowedLicenses) > 0 &&
			!slices.ContainsFunc(u.opts.AllowedLicenses, func(l string) bool { return strings.EqualFold(l, a.License) }) {
			errs = append(errs, fmt.Sprintf("artifacts[%d] %q: %v: %q (allowed: %s)", i, a.Name, ErrLicense, a.License, strings.Join(u.opts.AllowedLicenses, ", ")))
		}
		if need := a.Requires.MinMemory; need > 0 && uint64(need) > u.opts.Hardware.MemoryBytes {
			errs = append(errs, fmt.Sprintf("artifacts[%d] %q: %v: needs %d bytes of memory, the device has %d", i, a.Name, ErrRequirements, need, u.opts.Hardware.MemoryBytes))
		}
		if len(a.Requires.Arch) > 0 && !slices.Contains(a.Requires.Arch, u.opts.Hardware.Arch) {
			errs = append(errs, fmt.Sprintf("artifacts[%d] %q: %v: runs on %s, the device is %s", i, a.Name, ErrRequirements, strings.Join(a.Requires.Arch, ", "), u.opts.Hardware.Arch))
		}
	}
	for i, c := range m.Checks {
		if c.JSONSchema == nil {
			continue
		}
		if u.opts.Schema == nil {
			errs = append(errs, fmt.Sprintf("checks[%d]: %v", i, ErrNoSchemaValidator))
			continue
		}
		if _, err := u.opts.Schema(c.JSONSchema); err != nil {
			errs = append(errs, fmt.Sprintf("checks[%d].json_schema: %v: %v", i, ErrMalformed, err))
		}
	}
	target := Target{Release: Release{Version: m.Version}, Digest: v.Digest, Checks: m.Checks}
	for _, a := range m.Artifacts {
		target.Artifacts = append(target.Artifacts, Installed{Artifact: a, Path: u.artifactPath(a)})
	}
	if len(errs) == 0 {
		if err := u.checkSpace(target); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return EvRefuse{Refusal: Refusal{Version: m.Version, Digest: v.Digest,
			Reason: fmt.Sprintf("version %d refused: %s", m.Version, strings.Join(errs, "; "))}}
	}
	return EvAccept{Target: target}
}

// checkSpace refuses a target whose missing bytes do not fit: the running
// release's files stay until the new one is confirmed, so the new ones
// must fit beside them.
func (u *Updater) checkSpace(t Target) error {
	var need int64
	seen := map[string]bool{}
	for _, a := range t.Artifacts {
		if seen[a.SHA256] || hasFile(a.Path, a.Size) {
			continue
		}
		seen[a.SHA256] = true
		need += a.Size - u.partialBytes(a.Artifact)
	}
	if need <= 0 {
		return nil
	}
	free, err := u.opts.DiskFree(u.opts.Dir)
	if err != nil {
		return fmt.Errorf("check free space in %s: %w", u.opts.Dir, err)
	}
	if need > free {
		return fmt.Errorf("%w in %s: version %d needs %d more bytes, %d are free (the running version's files stay until the new one is confirmed)",
			ErrNoSpace, u.opts.Dir, t.Version, need, free)
	}
	return nil
}

// partialBytes is how much of a is already downloaded.
func (u *Updater) partialBytes(a Artifact) int64 {
	d := Downloader{log: u.log}
	part := u.partialPath(a)
	rec := d.loadProgress(part, a.URL, a.Size)
	if !hasAtLeast(part, rec.Offset) {
		return 0
	}
	return rec.Offset
}

func hasAtLeast(path string, n int64) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Size() >= n
}

// diskFree is the default Options.DiskFree: bytes available to an
// unprivileged writer.
func diskFree(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
