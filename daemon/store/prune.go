package store

import (
	"bytes"
	"time"

	bolt "go.etcd.io/bbolt"
)

// PruneJobs deletes finished jobs last updated before cutoff and dedup
// entries that expired by now, and returns how many jobs went.
func (s *Store) PruneJobs(cutoff, now time.Time, max int) (int, error) {
	n := 0
	err := s.update(func(tx *bolt.Tx) error {
		n = 0
		jobs := tx.Bucket(bucketJobs)
		c := jobs.Cursor()
		var del [][]byte
		for k, v := c.First(); k != nil && len(del) < max; k, v = c.Next() {
			j, err := DecodeJob(v)
			if err != nil {
				return err
			}
			if !j.CreatedAt.Before(cutoff) {
				break // ids grow with time
			}
			if j.State.Terminal() && j.UpdatedAt.Before(cutoff) {
				del = append(del, append([]byte(nil), k...))
			}
		}
		for _, k := range del {
			if err := jobs.Delete(k); err != nil {
				return err
			}
		}
		n = len(del)
		return pruneDedup(tx, now, max)
	})
	return n, err
}

func pruneDedup(tx *bolt.Tx, now time.Time, max int) error {
	exp, dedup := tx.Bucket(bucketDedupExp), tx.Bucket(bucketDedup)
	c := exp.Cursor()
	var del [][]byte
	limit := u64(uint64(now.UnixNano()))
	for k, _ := c.First(); k != nil && len(del) < max && bytes.Compare(k[:8], limit) <= 0; k, _ = c.Next() {
		del = append(del, append([]byte(nil), k...))
	}
	for _, k := range del {
		key := k[8:]
		// Only delete the dedup entry if it is this expiry's: the key may
		// have been seen again since.
		if v := dedup.Get(key); len(v) == 16 && bytes.Equal(v[:8], k[:8]) {
			if err := dedup.Delete(key); err != nil {
				return err
			}
		}
		if err := exp.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
