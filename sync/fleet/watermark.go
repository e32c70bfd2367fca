package fleet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/ember-edge/ember/internal/durable"
)

// The watermark is the rollback protection kept outside the database: a
// small file (Options.Watermark) holding the highest manifest version
// ever accepted, the version floor, and the key list held. It is written
// (durably: temporary file, fsync, rename, fsync of the directory)
// before the state record that raises any of them, so it is never
// behind the database; at start the updater takes the greater of the
// two. A device whose database is lost or replaced by an old copy
// therefore still refuses what it refused before.
type watermark struct {
	Format        int    `json:"format"`
	Highest       int64  `json:"highest_version"`
	HighestDigest string `json:"highest_digest,omitempty"`
	Floor         int64  `json:"min_version,omitempty"`
	KeysVersion   int64  `json:"keys_version,omitempty"`
	KeysDigest    string `json:"keys_digest,omitempty"`
	// Keys is the signed key list envelope, verified again at every
	// start: a device that lost its database still knows its keys.
	Keys json.RawMessage `json:"keys,omitempty"`
}

const watermarkFormat = 1

// maxWatermarkBytes bounds the file: a key list envelope and a few numbers.
const maxWatermarkBytes = 2 * maxEnvelopeBytes

// readWatermark returns the watermark at path, or the zero one when
// there is no file. A file that cannot be read is an error: guessing
// would reopen replays.
func readWatermark(path string) (watermark, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return watermark{Format: watermarkFormat}, nil
	}
	if err != nil {
		return watermark{}, fmt.Errorf("read watermark: %w", err)
	}
	return decodeWatermark(data)
}

// decodeWatermark reads a watermark strictly.
func decodeWatermark(data []byte) (watermark, error) {
	if len(data) > maxWatermarkBytes {
		return watermark{}, fmt.Errorf("decode watermark: %d bytes, the limit is %d", len(data), maxWatermarkBytes)
	}
	var wm watermark
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&wm); err != nil {
		return watermark{}, fmt.Errorf("decode watermark: %w", err)
	}
	if dec.More() {
		return watermark{}, errors.New("decode watermark: data after the record")
	}
	switch {
	case wm.Format != watermarkFormat:
		return watermark{}, fmt.Errorf("decode watermark: format %d, this emberd reads %d", wm.Format, watermarkFormat)
	case wm.Highest < 0 || wm.Floor < 0 || wm.Floor > wm.Highest || wm.KeysVersion < 0:
		return watermark{}, fmt.Errorf("decode watermark: versions out of order: highest %d, minimum %d, keys %d", wm.Highest, wm.Floor, wm.KeysVersion)
	case (wm.KeysVersion > 0) != (len(wm.Keys) > 0):
		return watermark{}, fmt.Errorf("decode watermark: keys version %d with %d bytes of key list", wm.KeysVersion, len(wm.Keys))
	}
	return wm, nil
}

// writeWatermark replaces the file at path durably.
func writeWatermark(path string, wm watermark) error {
	wm.Format = watermarkFormat
	data, err := json.Marshal(wm)
	if err != nil {
		return fmt.Errorf("encode watermark: %w", err)
	}
	err = durable.WriteFile(path, 0o600, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
	if err != nil {
		return fmt.Errorf("write watermark: %w", err)
	}
	return nil
}

// raise returns wm with the versions of st where they are greater, and
// whether anything changed.
func (wm watermark) raise(st State) (watermark, bool) {
	changed := false
	if st.Highest > wm.Highest || (st.Highest == wm.Highest && wm.HighestDigest == "" && st.HighestDigest != "") {
		wm.Highest, wm.HighestDigest, changed = st.Highest, st.HighestDigest, true
	}
	if st.Floor > wm.Floor {
		wm.Floor, changed = st.Floor, true
	}
	return wm, changed
}
