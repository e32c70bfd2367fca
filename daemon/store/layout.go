package store

import (
	"encoding/binary"
	"time"
)

// The database layout. Every bucket is created by Open; nothing else
// creates buckets, so this file is the whole map of what is on disk.
// Integers in keys and values are big-endian uint64 unless noted, so that
// bbolt's byte order is numeric order and queues iterate oldest first. A
// <priority> in a key is one ASCII digit, '0' (lowest) to '9'. Keys that
// join strings with \x00 stay unambiguous because a pipeline name holds no
// NUL (config allows letters, digits and ._:- only) and each key has at
// most one other variable-length part. (Nested buckets per pipeline would
// not need that argument; moving to them is a schema change, with a
// migration.)
//
//	meta/
//	  schema              -> uint64: the layout version below
//	  boots               -> uint64: how many times the database was opened
//	models/               the model registry: models imported into the store,
//	                      and the models of the active fleet release
//	                      (source "fleet", rewritten by each commit and
//	                      rollback from the update record)
//	  <name>              -> JSON ModelRecord
//	settings/             small runtime settings that outlive a restart
//	  <key>               -> raw bytes; the keys in use:
//	  fleet/state         -> JSON fleet.State: the one update record. The
//	                         fleet updater writes it before each side
//	                         effect; daemon/release keeps nothing of its
//	                         own and reads what it serves and stages from
//	                         it (sync/DESIGN.md, "The update record")
//	  fleet/desired/fleet, fleet/desired/device
//	                      -> 'p' + the last payload of each desired topic
//	  uplink/outbox_id    -> the outbox id (16 hex digits), made once
//	  uplink/bytes_today  -> JSON {day, bytes}: the uplink's daily budget
//	  release/state       -> (before the update record was the only one)
//	                         daemon/release's own record of the active and
//	                         staged release; migrated into fleet/state and
//	                         deleted when the daemon opens (release.New)
//	tokens/               API bearer tokens (daemon/auth): the id part of a
//	                      token finds its record without a scan; the
//	                      secret is kept only as its SHA-256; revoked
//	                      tokens stay, marked, so `emberctl token ls`
//	                      shows them
//	  <id>                -> JSON TokenRecord
//	hashes/               sha256 of model files outside the store, so that a
//	                      large file is hashed once, not at every start
//	  <path>              -> JSON FileHash (size and mtime say if it is stale)
//
//	jobs/                 every job, by id; ids are given out before the
//	                      group commit, the bucket's sequence keeps the
//	                      highest committed, and Open resumes from it (or
//	                      from the last key, if higher)
//	  <id>                -> JSON Job
//	queue/                queued jobs in dispatch order, with what the
//	                      dispatcher filters on, so a scan past held-back
//	                      jobs decodes none of them (an empty value, from an
//	                      older build, means: read the job)
//	  <255-priority><id>  -> <not-before unix ns or 0><uvarint len><pipeline><model>
//	pqueue/               queued jobs by pipeline, oldest first, for
//	                      drop_oldest and per-pipeline backlog bounds
//	  <pipeline>\x00<id>  -> nil
//	backlog/              queued jobs per pipeline
//	  <pipeline>          -> uint64 count
//	coalesce/             the queued job holding a coalesce key, which a
//	                      newer message for the same key replaces
//	  <pipeline>\x00<key> -> job id
//	running/              jobs handed to the engine; requeued at start
//	  <id>                -> nil
//	dedup/                request ids seen within the dedup window
//	  <key>               -> <expiry unix ns><job id>
//	dedupexp/             the same entries by expiry, to prune cheaply
//	  <expiry unix ns><key> -> nil
//	pids/                 the last QoS 1 packet per client, pipeline and
//	                      packet id, to recognise a redelivery (DUP) of a
//	                      message whose PUBACK was lost (a message fanned
//	                      out to two pipelines is two jobs); bounded by
//	                      65535 per client and pipeline
//	  <client>\x00<pipeline>\x00<packet id, big-endian uint16>
//	                      -> <sha256 of topic and payload><job id>
//
//	outbox/               results, dead letters, telemetry, and the upstream
//	                      copies of audit entries (kind "audit"), which the
//	                      limits never evict before they are synced
//	  <priority>/         one bucket per priority class, 0 (lowest) to 9
//	    <seq>             -> JSON Record; seq is global across classes
//	outboxmeta/
//	  seq                 -> uint64: the last sequence number given out
//	  count, bytes        -> uint64: records held and their encoded size
//	  pcount<p>, pbytes<p> -> uint64: records of class p not yet synced
//	  ccount<p>, cbytes<p> -> uint64: records of class p held and not yet
//	                         confirmed (unsent ones included)
//	  dropped_unconfirmed -> uint64: records dropped by the store's limits
//	                         (PruneOutbox) before the fleet confirmed them
//	synced/               the uplink's cursor per priority class: every
//	                      record of the class up to it was acknowledged by
//	                      the broker (PUBACK) or, classified local, skipped
//	  <priority>          -> uint64 seq
//	confirmed/            the confirmed cursor per priority class (never
//	                      past synced/): every record of the class up to it
//	                      was stored by the fleet's collector (its ack
//	                      topic), or is local; with uplink.confirm: broker
//	                      it follows synced/. Retention prunes only records
//	                      up to it (confirm.go). A database from before it
//	                      existed starts it at synced/ (initConfirmed).
//	  <priority>          -> uint64 seq
//
//	audit/                the audit chain (daemon/audit): append-only, one
//	                      entry per action, each holding the SHA-256 of the
//	                      previous entry's bytes. Never evicted by the
//	                      outbox limits; pruned oldest first only by
//	                      PruneAudit, which leaves a signed checkpoint
//	  <index>             -> the entry's canonical bytes (JSON, audit.Entry);
//	                         the index starts at 1 and never repeats
//	auditmeta/
//	  first               -> uint64: the lowest index kept (1 until pruned)
//	  last                -> uint64: the last index written
//	  head                -> [32]byte: sha256 of entry <last>'s bytes
//	auditcp/              signed checkpoints (audit.Checkpoint, JSON): the
//	                      device key's ed25519 signature over an index and
//	                      the hash of that entry; written periodically, and
//	                      at <first>-1 whenever entries are pruned
//	  <index>             -> checkpoint bytes
var (
	bucketMeta       = []byte("meta")
	bucketModels     = []byte("models")
	bucketSettings   = []byte("settings")
	bucketHashes     = []byte("hashes")
	bucketTokens     = []byte("tokens")
	bucketJobs       = []byte("jobs")
	bucketQueue      = []byte("queue")
	bucketPQueue     = []byte("pqueue")
	bucketBacklog    = []byte("backlog")
	bucketCoalesce   = []byte("coalesce")
	bucketRunning    = []byte("running")
	bucketDedup      = []byte("dedup")
	bucketDedupExp   = []byte("dedupexp")
	bucketPIDs       = []byte("pids")
	bucketOutbox     = []byte("outbox")
	bucketOutboxMeta = []byte("outboxmeta")
	bucketSynced     = []byte("synced")
	bucketAudit      = []byte("audit")
	bucketAuditMeta  = []byte("auditmeta")
	bucketConfirmed  = []byte("confirmed")

	bucketAuditCheckpoints = []byte("auditcp")

	keySchema = []byte("schema")
	keyBoots  = []byte("boots")
	keySeq    = []byte("seq")
	keyCount  = []byte("count")
	keyBytes  = []byte("bytes")
	keyFirst  = []byte("first")
	keyLast   = []byte("last")
	keyHead   = []byte("head")
)

// schemaVersion is the layout this code reads and writes. Open refuses a
// database written by a newer layout rather than misreading it.
const schemaVersion = 1

// topBuckets are created on Open.
var topBuckets = [][]byte{
	bucketMeta, bucketModels, bucketSettings, bucketHashes, bucketTokens,
	bucketJobs, bucketQueue, bucketPQueue, bucketBacklog, bucketCoalesce, bucketRunning, bucketDedup, bucketDedupExp, bucketPIDs,
	bucketOutbox, bucketOutboxMeta, bucketSynced, bucketConfirmed,
	bucketAudit, bucketAuditMeta, bucketAuditCheckpoints,
}

// Priorities is the number of priority classes, 0 (lowest) to 9.
const Priorities = 10

func priorityKey(p int) []byte { return []byte{byte('0' + p)} }

func pipelineKey(pipeline string, rest []byte) []byte {
	return append(append([]byte(pipeline), 0), rest...)
}

// queueKey orders the queue: higher priority first, then older first.
func queueKey(priority int, id uint64) []byte {
	return append([]byte{byte(255 - priority)}, u64(id)...)
}

// queueEntry is the summary of a queued job kept in its queue value.
func queueEntry(j Job) []byte {
	var nb uint64
	if !j.NotBefore.IsZero() {
		nb = uint64(j.NotBefore.UnixNano())
	}
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+2+len(j.Pipeline)+len(j.Model)), nb)
	v = binary.AppendUvarint(v, uint64(len(j.Pipeline)))
	return append(append(v, j.Pipeline...), j.Model...)
}

// parseQueueEntry reads a queue value into the fields ReadyJobs filters
// on; ok is false for a value it cannot read.
func parseQueueEntry(key, v []byte) (j Job, ok bool) {
	if len(key) != 9 || len(v) < 9 {
		return Job{}, false
	}
	j.ID, j.Priority = binary.BigEndian.Uint64(key[1:]), 255-int(key[0])
	if nb := binary.BigEndian.Uint64(v); nb != 0 {
		j.NotBefore = time.Unix(0, int64(nb))
	}
	n, w := binary.Uvarint(v[8:])
	rest := v[8+max(w, 0):]
	if w <= 0 || n > uint64(len(rest)) {
		return Job{}, false
	}
	j.Pipeline, j.Model = string(rest[:n]), string(rest[n:])
	return j, true
}

func pendingCountKey(p int) []byte { return append([]byte("pcount"), priorityKey(p)...) }
func pendingBytesKey(p int) []byte { return append([]byte("pbytes"), priorityKey(p)...) }
