package audit

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"

	"github.com/ember-edge/ember/daemon/store"
)

// Report is what Verify found.
type Report struct {
	OK bool `json:"ok"`
	// Entries is how many entries are held and were checked.
	Entries uint64 `json:"entries"`
	// FirstBad is the lowest index that is missing, altered or out of
	// place; nil when OK. Reason says what is wrong with it.
	FirstBad *uint64 `json:"first_bad"`
	Reason   string  `json:"reason,omitempty"`
	// First and Last are the indexes of the oldest and newest entries
	// held (0 when none).
	First uint64 `json:"first"`
	Last  uint64 `json:"last"`
	// Checkpoints is how many are kept, BadCheckpoints how many of them
	// do not verify against Key (ignored, so a forged one anchors
	// nothing), and Anchor the latest that does (0: none).
	Checkpoints    int    `json:"checkpoints"`
	BadCheckpoints int    `json:"bad_checkpoints"`
	Anchor         uint64 `json:"anchor"`
	Key            string `json:"key"`
}

func (r *Report) bad(index uint64, format string, args ...any) {
	if r.FirstBad == nil || index < *r.FirstBad {
		r.FirstBad, r.Reason = &index, fmt.Sprintf(format, args...)
	}
}

// Verify checks the chain held by the log's store against the log's own
// key. See VerifyStore.
func (l *Log) Verify() (Report, error) { return VerifyStore(l.opts.Store, l.PublicKey()) }

// verifyPage is how many entries Verify reads at a time.
const verifyPage = 1000

// VerifyStore walks the audit chain in st and its checkpoints, checking
// them against pub, and names the first bad entry:
//
//   - an index missing between two held entries, or past the last held
//     one when the chain's head or a valid checkpoint names a later one
//     (the newest entries were removed);
//   - an entry that does not decode or holds another index (moved);
//   - an entry whose bytes do not hash to what the next entry's prev (or
//     the head, or a valid checkpoint) says they were (edited);
//   - oldest entries missing: the first entry held must link to the
//     genesis (index 1) or to a valid checkpoint of the index before it;
//     if none covers the gap, the first index after the latest valid
//     checkpoint below it is named.
//
// Checkpoints that do not verify against pub are counted and ignored.
// The entries written since the last checkpoint are protected by the
// chain's head in the same file only: an attacker who rewrites those
// and the head is caught by the upstream copy, not here.
func VerifyStore(st *store.Store, pub ed25519.PublicKey) (Report, error) {
	r := Report{Key: PublicKeyString(pub)}
	head, err := st.AuditHead()
	if err != nil {
		return r, err
	}
	raw, err := st.AuditCheckpoints()
	if err != nil {
		return r, err
	}
	valid := map[uint64]string{}
	for _, c := range raw {
		r.Checkpoints++
		cp, err := DecodeCheckpoint(c.Data)
		if err != nil || cp.Index != c.Index || !cp.Verify(pub) {
			r.BadCheckpoints++
			continue
		}
		valid[cp.Index] = cp.Hash
		r.Anchor = max(r.Anchor, cp.Index)
	}
	// lowAnchor is the latest valid checkpoint below index i.
	lowAnchor := func(i uint64) uint64 {
		var a uint64
		for k := range valid {
			if k < i && k > a {
				a = k
			}
		}
		return a
	}

	var prevIndex uint64
	var prevHash string
	// pending is the entry blamed for a broken link into its successor,
	// not yet named: if the successor's own link breaks too, the successor
	// is the altered one (its bytes changed, so both links around it
	// broke); if not, pending is.
	var pending *uint64
	resolve := func(nextBroken bool) {
		if pending == nil {
			return
		}
		if nextBroken {
			r.bad(*pending+1, "entry %d does not match the hash entry %d holds of it, nor holds entry %d's (altered)", *pending+1, *pending+2, *pending)
		} else {
			r.bad(*pending, "entry %d does not match the hash entry %d holds of it (altered)", *pending, *pending+1)
		}
		pending = nil
	}
	for after := uint64(0); ; {
		page, err := st.AuditEntries(after, verifyPage)
		if err != nil {
			return r, err
		}
		if len(page) == 0 {
			break
		}
		for _, se := range page {
			after = se.Index
			r.Entries++
			hash := Hash(se.Data)
			var want string // the hash this entry's prev must hold; "" unknown
			switch {
			case r.Entries == 1:
				r.First = se.Index
				if se.Index == 1 {
					want = zeroHash
				} else if h, ok := valid[se.Index-1]; ok {
					want = h
				} else {
					a := lowAnchor(se.Index)
					r.bad(a+1, "entries %d to %d are missing and no valid checkpoint covers them", a+1, se.Index-1)
				}
			case se.Index != prevIndex+1:
				resolve(false)
				r.bad(prevIndex+1, "entry %d is missing (the chain goes from %d to %d)", prevIndex+1, prevIndex, se.Index)
			default:
				want = prevHash
			}
			prevIndex, prevHash = se.Index, hash
			e, err := DecodeEntry(se.Data)
			if err != nil {
				r.bad(se.Index, "entry %d does not decode: %v", se.Index, err)
				continue
			}
			if e.Index != se.Index {
				r.bad(se.Index, "entry %d holds entry %d (moved)", se.Index, e.Index)
			}
			broken := want != "" && e.Prev != want
			switch {
			case pending != nil:
				resolve(broken)
			case broken && r.Entries == 1:
				r.bad(se.Index, "entry %d does not link to %s", se.Index, anchorName(se.Index))
			case broken:
				p := se.Index - 1
				pending = &p
			}
			if h, ok := valid[se.Index]; ok && h != hash {
				r.bad(se.Index, "entry %d does not match its signed checkpoint (altered)", se.Index)
			}
		}
	}
	r.Last = prevIndex
	resolve(r.Entries > 0 && head.Last == r.Last && hex.EncodeToString(head.Hash[:]) != prevHash)
	switch {
	case r.Entries == 0 && head.Last == 0 && r.Anchor == 0:
		// An empty chain.
	case r.Entries == 0:
		// Pruned to nothing: the last prune's checkpoint is the head.
		if h, ok := valid[head.Last]; !ok || h != hex.EncodeToString(head.Hash[:]) || r.Anchor > head.Last {
			a := lowAnchor(max(head.Last, r.Anchor) + 1)
			r.bad(a+1, "no entries are held and no valid checkpoint covers the chain's end (%d)", max(head.Last, r.Anchor))
		}
	default:
		if head.Last > r.Last {
			r.bad(r.Last+1, "entry %d is missing (the chain's head is %d)", r.Last+1, head.Last)
		} else if head.Last == r.Last && hex.EncodeToString(head.Hash[:]) != prevHash {
			r.bad(r.Last, "entry %d does not match the chain's head (altered)", r.Last)
		}
		if r.Anchor > r.Last {
			r.bad(r.Last+1, "entry %d is missing (a signed checkpoint covers entry %d)", r.Last+1, r.Anchor)
		}
	}
	r.OK = r.FirstBad == nil
	return r, nil
}

func anchorName(i uint64) string {
	if i == 1 {
		return "the start of the chain"
	}
	return fmt.Sprintf("the signed checkpoint of entry %d", i-1)
}
