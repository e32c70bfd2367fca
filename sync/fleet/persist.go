package fleet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// StateStore keeps the updater's small records across restarts. Put must
// be durable when it returns nil (fsynced, as daemon/store's SetSetting
// is): the updater performs a side effect only after the state that names
// it is stored.
type StateStore interface {
	// Get returns the value under key, or (nil, nil) when there is none.
	Get(key string) ([]byte, error)
	// Put stores value under key.
	Put(key string, value []byte) error
}

// Settings is the shape of daemon/store's settings bucket.
type Settings interface {
	Setting(key string) ([]byte, error)
	SetSetting(key string, value []byte) error
}

// SettingsStore adapts a Settings store whose missing keys come back as an
// error matching notFound (store.ErrNotFound for daemon/store):
//
//	fleet.SettingsStore(st, store.ErrNotFound)
func SettingsStore(s Settings, notFound error) StateStore {
	return settingsStore{s: s, notFound: notFound}
}

type settingsStore struct {
	s        Settings
	notFound error
}

func (a settingsStore) Get(key string) ([]byte, error) {
	v, err := a.s.Setting(key)
	if errors.Is(err, a.notFound) {
		return nil, nil
	}
	return v, err
}

func (a settingsStore) Put(key string, value []byte) error { return a.s.SetSetting(key, value) }

// The keys the updater uses in its StateStore.
const (
	keyState         = "fleet/state"          // JSON State
	keyDesiredFleet  = "fleet/desired/fleet"  // last payload of fleet/v1/<fleet>/desired
	keyDesiredDevice = "fleet/desired/device" // last payload of fleet/v1/<fleet>/<device>/desired
	keyKeyList       = "fleet/keys"           // the key list held (signed envelope), also in the watermark
)

// ReadState returns the update record in s, or the initial state (idle,
// baseline release) when there is none. The Updater is the record's only
// writer; the daemon reads it to learn what it serves (State.Serving,
// State.Staged).
func ReadState(s StateStore) (State, error) {
	data, err := s.Get(keyState)
	if err != nil {
		return State{}, fmt.Errorf("read fleet state: %w", err)
	}
	if data == nil {
		return State{Format: stateFormat, Phase: PhaseIdle}, nil
	}
	return decodeState(data)
}

// Adopt makes active the committed release of a store that holds no
// update record yet, for the migration of a database in which the
// daemon kept its own record of the active release (daemon/release's
// "release/state", before the update record was the only one). It
// reports whether it wrote a record. Where a record exists it is the
// truth — the updater wrote it before every switch the old record
// followed — and Adopt leaves it alone; so does it for the baseline
// (version 0), which is what no record means.
func Adopt(s StateStore, active Release) (bool, error) {
	data, err := s.Get(keyState)
	if err != nil {
		return false, fmt.Errorf("read fleet state: %w", err)
	}
	if data != nil || active.Version == 0 {
		return false, nil
	}
	st := State{Format: stateFormat, Phase: PhaseActive, Highest: active.Version, Current: active}
	if err := st.check(); err != nil {
		return false, fmt.Errorf("adopt release %d: %w", active.Version, err)
	}
	enc, err := encodeState(st)
	if err != nil {
		return false, err
	}
	if err := s.Put(keyState, enc); err != nil {
		return false, fmt.Errorf("adopt release %d: %w", active.Version, err)
	}
	return true, nil
}

// encodeState returns the stored form of s.
func encodeState(s State) ([]byte, error) {
	s.Format = stateFormat
	return json.Marshal(s)
}

// decodeState reads a stored state strictly and checks the invariants
// the updater relies on, so a damaged record is an error, not a panic or
// a guess.
func decodeState(data []byte) (State, error) {
	var s State
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return State{}, fmt.Errorf("decode fleet state: %w", err)
	}
	if dec.More() {
		return State{}, errors.New("decode fleet state: data after the record")
	}
	if s.Format != stateFormat {
		return State{}, fmt.Errorf("decode fleet state: format %d, this emberd reads %d", s.Format, stateFormat)
	}
	if err := s.check(); err != nil {
		return State{}, fmt.Errorf("decode fleet state: %w", err)
	}
	return s, nil
}

// check returns the first broken invariant of s.
func (s *State) check() error {
	if int(s.Phase) >= len(phaseNames) {
		return fmt.Errorf("unknown phase %d", s.Phase)
	}
	if s.Highest < 0 || s.Current.Version < 0 || s.Current.Version > s.Highest {
		return fmt.Errorf("versions out of order: current %d, highest %d", s.Current.Version, s.Highest)
	}
	needTarget := !s.Phase.Resting() && !(s.Phase == PhaseRollingBack && s.RollbackTo != nil)
	switch {
	case needTarget && s.Target == nil:
		return fmt.Errorf("phase %s without a target", s.Phase)
	case s.Phase.Resting() && s.Target != nil:
		return fmt.Errorf("phase %s with a target", s.Phase)
	}
	if s.Target != nil {
		if len(s.Target.Artifacts) == 0 {
			return errors.New("target without artifacts")
		}
		if s.NextArtifact < 0 || s.NextArtifact >= len(s.Target.Artifacts) {
			return fmt.Errorf("next artifact %d of %d", s.NextArtifact, len(s.Target.Artifacts))
		}
	}
	if s.RollbackTo != nil && s.Phase != PhaseRollingBack {
		return fmt.Errorf("rollback target in phase %s", s.Phase)
	}
	if s.Attempts < 0 {
		return fmt.Errorf("attempts %d", s.Attempts)
	}
	for _, rs := range [][]Release{{s.Current}, s.Kept, s.Retiring} {
		for _, r := range rs {
			if err := r.check(); err != nil {
				return err
			}
		}
	}
	if s.Target != nil {
		if err := s.Target.check(); err != nil {
			return err
		}
	}
	return nil
}

// check refuses a stored release whose files could be anywhere: every
// path must be one the updater itself would choose.
func (r Release) check() error {
	for _, a := range r.Artifacts {
		if !sha256Hex.MatchString(a.SHA256) || a.Size <= 0 {
			return fmt.Errorf("release %d: artifact %q: bad sha256 or size", r.Version, a.Name)
		}
		if a.Path == "" {
			return fmt.Errorf("release %d: artifact %q: no path", r.Version, a.Name)
		}
	}
	return nil
}
