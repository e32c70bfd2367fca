// Package audit keeps the device's tamper-evident audit trail: what was
// done to the device (model loads, imports, pipeline reloads, job
// cancellations, fleet updates), and, when configured, the metadata of
// every inference request.
//
// Each action is an Entry appended to a hash chain in the store's own
// buckets (daemon/store/layout.go): entries carry a monotonic index and
// the SHA-256 of the previous entry's bytes, so editing, deleting or
// reordering one breaks the chain at that entry. The chain is bounded:
// the oldest entries go only once the uplink has synced them (their
// upstream copies are outbox records of kind "audit", which the outbox
// limits never evict before then), and every pruning leaves a checkpoint
// signed by the device's ed25519 key, so that truncating the oldest
// entries is detectable too. Verify walks the chain and the checkpoints
// and names the first bad entry.
//
// Write failures are not silent: Write returns them, administrative and
// inference RPCs fail when their entry cannot be written, and Stats
// counts them (README, "Data sovereignty").
package audit
