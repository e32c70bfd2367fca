package fleet

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// evaluate verifies the desired payloads and turns the one in force into
// an event. The device's own topic wins over the fleet's only when its
// payload is acceptable (it verifies, is for this device, is valid now,
// and is the manifest already accepted or a newer one): junk, a replay
// or another device's manifest retained there is ignored, with its
// reason in Status.Ignored and the last error, and the fleet's is
// followed. A refusal of the fleet's goes to the last error.
func (r *runner) evaluate(ctx context.Context) error {
	u := r.u
	var notes []string
	for _, topic := range []string{u.topics.deviceDesired, u.topics.fleetDesired} {
		payload := r.desired[topic]
		if len(payload) == 0 {
			r.setIgnored(topic, "")
			continue
		}
		v, err := r.verify(payload)
		if errors.Is(err, errAlreadyHave) {
			r.setIgnored(topic, "")
			r.noteIgnored(notes)
			return nil
		}
		if err != nil {
			reason := fmt.Sprintf("refused %s: %v", topic, err)
			u.log.Warn("fleet: desired state refused", "topic", topic, "err", err)
			if topic == u.topics.deviceDesired {
				reason += "; following the fleet's desired state"
			}
			r.setIgnored(topic, reason)
			notes = append(notes, reason)
			continue
		}
		r.setIgnored(topic, "")
		return r.take(v, notes)
	}
	r.noteIgnored(notes)
	return nil
}

// noteIgnored shows why payloads were passed over as the last error; when
// none was, it clears a last error that an earlier evaluation set (and
// leaves any other, such as a download's, alone).
func (r *runner) noteIgnored(notes []string) {
	last := strings.Join(notes, "; ")
	prev := r.lastNote
	r.lastNote = last
	r.u.updateStatus(func(s *Status) {
		if (last != "" || s.LastError == prev) && s.LastError != last {
			s.LastError = last
			r.report = true
		}
	})
}

// take admits a verified manifest and applies the outcome.
func (r *runner) take(v *Verified, notes []string) error {
	u := r.u
	ev := u.admit(v)
	if ref, ok := ev.(EvRefuse); ok {
		if old := u.st.Refused; old != nil && old.Digest == ref.Refusal.Digest && old.Reason == ref.Refusal.Reason && u.st.Phase == PhaseFailed {
			r.noteIgnored(notes)
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
	r.lastNote = ""
	r.noteIgnored(notes)
	r.report = true
	return nil
}

// verify checks a desired payload in full, in this order: the envelope
// and its signatures against the keys in force; the manifest already
// accepted (errAlreadyHave: nothing else to check, even once it has
// expired); the scope (fleet, devices, validity period); the version
// rules (checkVersion).
func (r *runner) verify(payload []byte) (*Verified, error) {
	u := r.u
	v, err := Verify(payload, u.keys)
	if err != nil {
		return nil, err
	}
	if v.Manifest.Version == u.st.Highest && v.Digest == u.st.HighestDigest {
		return nil, errAlreadyHave
	}
	if err := v.Manifest.CheckScope(u.opts.Fleet, u.opts.Device, u.clock.Now()); err != nil {
		return nil, err
	}
	if err := r.checkVersion(v); err != nil {
		return nil, err
	}
	return v, nil
}

var errAlreadyHave = errors.New("already accepted")

// checkVersion is the rollback protection: a version below the floor or
// not above the highest accepted is refused, and so is one more than
// MaxVersionJump above it unless two different trusted keys signed it.
func (r *runner) checkVersion(v *Verified) error {
	st := r.u.st
	ver := v.Manifest.Version
	switch {
	case ver < st.Floor:
		return fmt.Errorf("%w: version %d is below %d, the minimum a committed manifest set", ErrBelowFloor, ver, st.Floor)
	case ver < st.Highest:
		return fmt.Errorf("%w: version %d is older than %d, the highest accepted (a replay or a downgrade)", ErrNotNewer, ver, st.Highest)
	case ver == st.Highest:
		return fmt.Errorf("%w: version %d was already accepted with other content (digest %.12s, now %.12s)", ErrNotNewer, ver, st.HighestDigest, v.Digest)
	case ver-st.Highest > r.u.opts.MaxVersionJump && len(v.KeyIDs) < 2:
		return fmt.Errorf("%w: version %d is %d above %d, the highest accepted; fleet.max_version_jump is %d: "+
			"sign it with a second trusted key (signed by %s)", ErrVersionJump, ver, ver-st.Highest, st.Highest,
			r.u.opts.MaxVersionJump, strings.Join(v.KeyIDs, ", "))
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
		if au, err := url.Parse(a.URL); err == nil {
			if err := checkTransport(au, u.opts.AllowHTTP); err != nil {
				errs = append(errs, fmt.Sprintf("artifacts[%d] %q: %v", i, a.Name, err))
			}
		}
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
	target := Target{Release: Release{Version: m.Version}, Digest: v.Digest, Checks: m.Checks,
		MinVersion: m.MinVersion, KeyIDs: v.KeyIDs}
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
