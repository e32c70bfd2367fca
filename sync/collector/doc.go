// Package collector is the fleet side of confirmed delivery: it takes
// the devices' envelopes off the fleet's broker as a member of an MQTT 5
// shared subscription group ($share/<group>/fleet/v1/<fleet>/+/…), so
// that N collectors split the load, decodes and verifies each envelope
// (uplink.DecodeEnvelope), stores a batch of them through a Sink in one
// transaction, and only then acknowledges: it publishes each envelope's
// class span on the device's ack topic (uplink.Ack), which moves the
// device's confirmed cursor, and acknowledges the MQTT messages.
//
// A collector holds no state: a crash between the commit and the acks
// leaves the records stored and the device unconfirmed, and the device
// sends them again after its confirm timeout; the sink drops the
// duplicates by (device_id, outbox_id, seq). Package pgsink is the
// PostgreSQL sink; FileSink wraps the JSON-lines file of sync/consumer
// for development. `emberctl collector run` runs one.
package collector
