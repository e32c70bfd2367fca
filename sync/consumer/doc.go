// Package consumer is the fleet side of the uplink: it subscribes to the
// devices' record topics on the fleet's broker (QoS 1, persistent
// session), decodes and verifies each envelope (format, sha256 of every
// record), drops duplicates by (device_id, outbox_id, seq) and appends
// each new record as one JSON line to a file.
//
// Delivery is at least once end to end: a message is acknowledged to the
// broker only after its records are written and fsynced, and the set of
// records already written is rebuilt from the file at start, so neither
// a broker redelivery nor a device's resend after a dropped link nor a
// restart of the consumer writes a record twice.
//
// Sink is the file half and can be used without MQTT (tests, other
// transports); Consumer connects a Sink to a broker. `emberctl uplink
// consume` runs one.
package consumer
