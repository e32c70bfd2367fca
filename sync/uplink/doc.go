// Package uplink sends the device's outbox to the fleet operator's MQTT
// broker whenever a link exists, for devices that see a network for
// minutes a day over links that drop mid-transfer.
//
// One goroutine (Run) owns a connection-level state machine (State,
// driven by the pure function next) and, while connected, a session
// that reads unsynced records class by class (priority 9 first), drops
// what is classified local, redacts the rest (package sync/redact),
// packs them into gzip'd JSON batches (Envelope, format 1), publishes
// them at QoS 1 with a window of batches awaiting their PUBACK, and
// advances each class's durable cursor (Outbox.MarkSynced) over the
// contiguous prefix of acknowledged batches only. A dropped link loses
// nothing: the next session resends from the cursor, and the consumer
// de-duplicates by (device_id, outbox_id, seq).
//
// While offline it sleeps between dial attempts with doubling, jittered
// backoff; Trigger dials at once and Poke reports new records. Uploads
// honour a byte-rate cap, daily schedule windows and a daily byte
// budget; the connection itself also carries the fleet updater's
// subscriptions (Link). sync/DESIGN.md describes the wire format and the
// guarantees.
//
// The package depends on small interfaces — Outbox, Settings, Clock —
// not on the store; only the MQTT connection itself (conn.go) knows
// paho.
package uplink
