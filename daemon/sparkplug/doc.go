// Package sparkplug decodes Sparkplug B messages, which PLCs and SCADA
// gateways publish over MQTT, into named, typed metric values for ember's
// pipelines.
//
// A Decoder takes an MQTT topic and payload and returns a Message: the
// parsed topic, the payload's timestamp and seq, and its metrics, each
// with its name, datatype, Go value, timestamp and flags. Message.Fields
// maps metric names to values for templates and rules.
//
// # Sessions
//
// Sparkplug is stateful. An edge node announces itself with an NBIRTH
// that names every metric, with its datatype and usually a numeric
// alias, and each of its devices with a DBIRTH; later NDATA and DDATA
// messages may then carry only the alias and the value. The Decoder
// remembers each birth, so that data by alias decodes to names, and ends
// the session on NDEATH (the edge node and all its devices) or DDEATH
// (one device).
//
// The Decoder follows the specification's host application rules:
//
//   - NDATA, DBIRTH and DDATA need the current session's birth. Without
//     one (ember started after the birth, or the Decoder evicted it) they
//     fail with ErrNoBirth; after a death, with ErrOffline; with an alias
//     or name the birth does not define, with ErrUnknownAlias or
//     ErrUnknownMetric. NeedsRebirth recognises all four, and
//     RebirthRequest builds the "Node Control/Rebirth" NCMD that makes
//     the edge node publish its births again.
//   - NBIRTH carries a bdSeq metric and so does NDEATH, the MQTT will
//     registered with the same connection. An NDEATH whose bdSeq is not
//     the current NBIRTH's is a late will of an earlier connection: it is
//     returned with Message.Stale set and changes nothing.
//   - Every message of an edge node session except NDEATH carries a seq,
//     0 to 255 and wrapping, one more than the edge node's previous
//     message. A break is reported in Message.Gap, not as an error: the
//     message itself is good, but messages before it were lost.
//   - NCMD and DCMD, which host applications send to edge nodes, decode
//     by the birth on record when there is one, and change nothing.
//   - STATE (spBv1.0/STATE/<host_id>) decodes its Sparkplug 3.0 JSON
//     payload into Message.Host.
//
// # Datatypes
//
// Every Sparkplug 3.0 metric datatype decodes: Int8 to Int64 to int64
// (two's complement in either the field's or the type's width, as
// publishers differ); UInt8 to UInt64 to uint64; Float and Double to
// float64; Boolean to bool; String, Text and UUID to string; DateTime to
// time.Time in UTC; Bytes and File to []byte (with Metric.MetaData);
// DataSet to DataSet; Template to Template, whose members decode like
// metrics; and the array types, packed little-endian in bytes_value, to
// []int64, []uint64, []float64, []bool, []string and []time.Time.
// Properties decode to Metric.Properties, nested property sets to maps.
//
// A value that does not match its datatype, and a datatype this package
// does not know (Unknown, a number newer than 3.0, a value sent only as a
// protobuf extension), fail that metric alone, in Metric.Err, so one bad
// tag does not hide the others.
//
// # Limits
//
// A Decoder bounds both each message and what it remembers (Options). A
// payload is scanned for its size, metric count, field count and nesting
// depth before it is decoded, so a hostile payload is refused before it
// costs memory. The record of edge nodes, devices and aliases is capped in
// count and estimated bytes; beyond them the least recently heard from
// edge nodes, then devices, are forgotten, and their data fails with
// ErrNoBirth until they rebirth.
//
// # Not supported
//
//   - Sparkplug A (spAv1.0), and Sparkplug 2's STATE/<host_id> topic with
//     its plain ONLINE and OFFLINE payloads.
//   - Reordering: a host application may hold messages that arrive out
//     of order for a reorder timeout; the Decoder reports the gap at once.
//   - Publishing: the Decoder is the receiving half of a host
//     application. It does not publish STATE or rebirth requests itself;
//     the caller does, with RebirthRequest, and should send at most one
//     per edge node until its NBIRTH arrives.
//   - Multi-part Bytes and File values are decoded part by part; putting
//     the parts together is the caller's.
//   - Template definitions are decoded but instances are not checked
//     against them, and template parameters are not applied.
//   - Protobuf extensions are kept by the protobuf decoder but not
//     interpreted.
package sparkplug
