package fleet

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
)

// What the updater trusts: the manifest keys in force (fleet.trusted_keys
// or the held key list) and the rollback protection merged from the
// database and the watermark.

// loadWatermark merges the watermark into st, the state read from the
// database: the greater highest version and floor win, and the key list
// held is the newest of the two copies that verifies against the root
// key. What the database lacks is written back, and what the watermark
// lacks (the database is newer: the first start with a watermark) is
// written to it, before anything acts on either.
func (u *Updater) loadWatermark(st State) (State, error) {
	path := u.opts.Watermark
	wm, err := readWatermark(path)
	if err != nil {
		return st, fmt.Errorf("fleet: %s: %w (the rollback protection outside the database; "+
			"remove it only if the database is intact)", path, err)
	}
	merged := st
	if wm.Highest > st.Highest {
		merged.Highest, merged.HighestDigest = wm.Highest, wm.HighestDigest
		u.log.Warn("fleet: the database is behind the watermark (lost or restored from an old copy); "+
			"keeping the watermark's highest version", "database", st.Highest, "watermark", wm.Highest, "file", path)
		u.updateStatus(func(s *Status) {
			s.LastError = fmt.Sprintf("the state database was behind %s: highest accepted version %d restored from it; "+
				"only a manifest of a greater version is accepted", path, wm.Highest)
		})
	}
	merged.Floor = max(merged.Floor, wm.Floor)
	if err := u.loadKeyList(&wm); err != nil {
		return st, err
	}
	if merged.Highest != st.Highest || merged.Floor != st.Floor {
		data, err := encodeState(merged)
		if err != nil {
			return st, fmt.Errorf("fleet: encode state: %w", err)
		}
		if err := u.opts.Store.Put(keyState, data); err != nil {
			return st, fmt.Errorf("fleet: persist state: %w", err)
		}
	}
	raised, changed := wm.raise(merged)
	if changed || !fileExists(path) {
		if err := writeWatermark(path, raised); err != nil {
			return st, fmt.Errorf("fleet: %w", err)
		}
	}
	u.wm = raised
	return merged, nil
}

// loadKeyList picks the key list in force at start: the newer of the
// watermark's and the database's copies that verifies. When the
// watermark says a key list was held but none verifies (fleet.root_key
// changed), no manifest key is trusted until a newer key list arrives:
// falling back to fleet.trusted_keys would trust keys the lost list
// revoked.
func (u *Updater) loadKeyList(wm *watermark) error {
	if u.opts.RootKey == nil {
		if wm.KeysVersion > 0 {
			u.log.Warn("fleet: a key list is held but fleet.root_key is not set; trusting fleet.trusted_keys", "keys_version", wm.KeysVersion)
		}
		return nil
	}
	dbCopy, err := u.opts.Store.Get(keyKeyList)
	if err != nil {
		return fmt.Errorf("fleet: read %s: %w", keyKeyList, err)
	}
	var best *VerifiedKeys
	var bestPayload []byte
	for _, p := range [][]byte{wm.Keys, dbCopy} {
		if len(p) == 0 {
			continue
		}
		v, err := VerifyKeyList(p, u.opts.RootKey, u.opts.Fleet)
		if err != nil {
			u.log.Warn("fleet: held key list does not verify; ignoring it", "err", err)
			continue
		}
		if best == nil || v.List.Version > best.List.Version {
			best, bestPayload = v, p
		}
	}
	switch {
	case best != nil && best.List.Version >= wm.KeysVersion:
		u.keys = best.Ring()
		if best.List.Version > wm.KeysVersion {
			wm.KeysVersion, wm.KeysDigest, wm.Keys = best.List.Version, best.Digest, bytes.Clone(bestPayload)
		}
		u.updateStatus(func(s *Status) { s.KeysVersion = best.List.Version })
	case wm.KeysVersion > 0:
		u.keys = NewKeyRing()
		u.keys.source = fmt.Sprintf("key list version %d held but it does not verify against fleet.root_key: waiting for a newer one", wm.KeysVersion)
		u.updateStatus(func(s *Status) { s.KeysVersion = wm.KeysVersion })
	}
	return nil
}

// takeKeyList handles a payload of the key list topic. A key list that
// verifies against the root key, is for this fleet and is newer than the
// one held is written to the watermark, then to the database, and its
// keys are in force at once: manifests only a dropped key signed stop
// verifying, and a target such a manifest set is abandoned if not yet
// switched to. It reports whether the keys changed.
func (r *runner) takeKeyList(payload []byte) (bool, error) {
	u := r.u
	if len(payload) == 0 {
		return false, nil // cleared: the list held stays in force
	}
	v, err := VerifyKeyList(payload, u.opts.RootKey, u.opts.Fleet)
	if err == nil {
		switch ver, held := v.List.Version, u.wm.KeysVersion; {
		case ver == held && v.Digest == u.wm.KeysDigest:
			r.setIgnored(u.topics.keys, "")
			return false, nil // the retained list again
		case ver < held:
			err = fmt.Errorf("%w: version %d is older than %d, the one held (a replay or a rollback)", ErrKeysNotNewer, ver, held)
		case ver == held:
			err = fmt.Errorf("%w: version %d is held with other content", ErrKeysNotNewer, ver)
		}
	}
	if err != nil {
		reason := fmt.Sprintf("refused key list %s: %v", u.topics.keys, err)
		u.log.Warn("fleet: key list refused", "err", err)
		r.setIgnored(u.topics.keys, reason)
		u.updateStatus(func(s *Status) { s.LastError = reason })
		r.report = true
		return false, nil
	}
	wm := u.wm
	wm.KeysVersion, wm.KeysDigest, wm.Keys = v.List.Version, v.Digest, bytes.Clone(payload)
	if err := writeWatermark(u.opts.Watermark, wm); err != nil {
		return false, fmt.Errorf("fleet: %w", err)
	}
	u.wm = wm
	if err := u.opts.Store.Put(keyKeyList, payload); err != nil {
		return false, fmt.Errorf("fleet: store key list: %w", err)
	}
	old := u.keys
	u.keys = v.Ring()
	dropped := slices.DeleteFunc(old.IDs(), func(id string) bool { _, ok := u.keys.Key(id); return ok })
	u.log.Info("fleet: key list accepted", "version", v.List.Version, "keys", u.keys.IDs(), "dropped", dropped)
	r.setIgnored(u.topics.keys, "")
	u.updateStatus(func(s *Status) { s.KeysVersion = v.List.Version })
	r.report = true
	if t := u.st.Target; t != nil && u.st.Phase.preSwitch() &&
		!slices.ContainsFunc(t.KeyIDs, func(id string) bool { _, ok := u.keys.Key(id); return ok }) {
		if err := r.cancelWork(); err != nil {
			return true, err
		}
		reason := fmt.Sprintf("version %d abandoned: signed by %s, which key list version %d no longer trusts",
			t.Version, strings.Join(t.KeyIDs, ", "), v.List.Version)
		if err := u.apply(EvFail{Reason: reason}); err != nil {
			return true, err
		}
	}
	return true, nil
}

// setIgnored records (or, with an empty reason, clears) why the payload
// retained on topic is not followed; Status.Ignored lists them.
func (r *runner) setIgnored(topic, reason string) {
	if r.ignored == nil {
		r.ignored = map[string]string{}
	}
	if reason == "" {
		delete(r.ignored, topic)
	} else {
		r.ignored[topic] = reason
	}
	var list []string
	for _, t := range []string{r.u.topics.deviceDesired, r.u.topics.fleetDesired, r.u.topics.keys} {
		if why, ok := r.ignored[t]; ok {
			list = append(list, why)
		}
	}
	r.u.updateStatus(func(s *Status) { s.Ignored = list })
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
