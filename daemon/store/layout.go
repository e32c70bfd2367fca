package store

// The database layout. Every bucket is created by Open; nothing else
// creates buckets, so this file is the whole map of what is on disk.
//
//	meta/
//	  schema            -> uint64, big-endian: the layout version below
//	models/             the model registry: models imported into the store
//	  <name>            -> JSON ModelRecord
//	settings/           small runtime settings that outlive a restart
//	  <key>             -> raw bytes
//	hashes/             sha256 of model files outside the store, so that a
//	                    large file is hashed once, not at every start
//	  <path>            -> JSON FileHash (size and mtime say if it is stale)
//
// Queues that later layouts add key their records by big-endian uint64
// sequence numbers, so that bbolt's byte order is their order.
var (
	bucketMeta     = []byte("meta")
	bucketModels   = []byte("models")
	bucketSettings = []byte("settings")
	bucketHashes   = []byte("hashes")

	keySchema = []byte("schema")
)

// schemaVersion is the layout this code reads and writes. Open refuses a
// database written by a newer layout rather than misreading it.
const schemaVersion = 1

// topBuckets are created on Open.
var topBuckets = [][]byte{bucketMeta, bucketModels, bucketSettings, bucketHashes}
