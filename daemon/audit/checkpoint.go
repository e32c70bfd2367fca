package audit

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Checkpoint is a signed statement that entry Index of the chain has
// hash Hash. One is kept periodically for the head, and one for the last
// entry deleted whenever the oldest entries are pruned: the first entry
// kept then links to a signed hash instead of to an entry that is gone.
type Checkpoint struct {
	Index uint64    `json:"index"`
	Hash  string    `json:"hash"`
	At    time.Time `json:"at"`
	// Key is the signer's public key (PublicKeyString); Sig is the
	// base64 ed25519 signature over signedMessage(Index, Hash).
	Key string `json:"key"`
	Sig string `json:"sig"`
}

// checkpointDomain separates these signatures from any other use of the
// device key.
const checkpointDomain = "ember audit checkpoint v1\x00"

func signedMessage(index uint64, hash []byte) []byte {
	m := binary.BigEndian.AppendUint64([]byte(checkpointDomain), index)
	return append(m, hash...)
}

// signCheckpoint makes the checkpoint's bytes.
func signCheckpoint(key ed25519.PrivateKey, index uint64, hash [32]byte, at time.Time) ([]byte, error) {
	cp := Checkpoint{Index: index, Hash: hex.EncodeToString(hash[:]), At: at.UTC(),
		Key: PublicKeyString(key.Public().(ed25519.PublicKey)),
		Sig: base64.StdEncoding.EncodeToString(ed25519.Sign(key, signedMessage(index, hash[:])))}
	return json.Marshal(cp)
}

// DecodeCheckpoint parses stored checkpoint bytes.
func DecodeCheckpoint(data []byte) (Checkpoint, error) {
	var cp Checkpoint
	if err := json.Unmarshal(data, &cp); err != nil {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint: %w", ErrMalformed, err)
	}
	if cp.Index == 0 || !isHash(cp.Hash) {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint without index or hash", ErrMalformed)
	}
	return cp, nil
}

// Verify reports whether pub signed the checkpoint.
func (cp Checkpoint) Verify(pub ed25519.PublicKey) bool {
	hash, err := hex.DecodeString(cp.Hash)
	if err != nil || len(hash) != 32 || cp.Key != PublicKeyString(pub) {
		return false
	}
	sig, err := base64.StdEncoding.DecodeString(cp.Sig)
	return err == nil && len(sig) == ed25519.SignatureSize && ed25519.Verify(pub, signedMessage(cp.Index, hash), sig)
}
