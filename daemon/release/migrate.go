package release

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/sync/fleet"
)

// legacyStateKey is the settings key under which emberd kept its own
// record of the applied release before the fleet update record became
// the only one. New migrates it away; nothing writes it any more.
const legacyStateKey = "release/state"

// legacyState is that record's layout.
type legacyState struct {
	// Active was the committed release, serving traffic.
	Active fleet.Release `json:"active"`
	// Staged was a release activated but not committed.
	Staged *fleet.Release `json:"staged,omitempty"`
}

// migrate folds the legacy record into the fleet update record and
// deletes it. The update record, written before every switch the legacy
// one followed, wins wherever it exists (a staged release it does not
// name, or a commit it has not recorded, the updater redoes or undoes);
// only a store without one adopts the legacy record's active release
// (fleet.Adopt). The new record is written before the old one goes, so
// a crash in between migrates again, to the same result.
func migrate(st *store.Store, fs fleet.StateStore, log *slog.Logger) error {
	data, err := st.Setting(legacyStateKey)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", legacyStateKey, err)
	}
	var old legacyState
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&old); err != nil {
		return fmt.Errorf("migrate %s: %w", legacyStateKey, err)
	}
	adopted, err := fleet.Adopt(fs, old.Active)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", legacyStateKey, err)
	}
	if err := st.DeleteSetting(legacyStateKey); err != nil {
		return fmt.Errorf("migrate %s: %w", legacyStateKey, err)
	}
	staged := int64(-1)
	if old.Staged != nil {
		staged = old.Staged.Version
	}
	log.Info("release: migrated the old release record into the fleet update record",
		"active", old.Active.Version, "staged", staged, "adopted", adopted)
	return nil
}
