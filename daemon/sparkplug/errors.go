package sparkplug

import (
	"errors"
	"fmt"
)

// ErrInvalidTopic is returned for an MQTT topic that is not a Sparkplug B
// topic: another namespace (Sparkplug A, plain MQTT), an unknown message
// type, a missing or extra level, a device_id on a node message or none on
// a device message, or an empty or wildcard ID.
var ErrInvalidTopic = errors.New("invalid Sparkplug topic")

// ErrMalformed is returned for a payload that is not a well-formed
// Sparkplug B protobuf (truncated, a length past the end, a field with the
// wrong wire type), or a STATE payload that is not the JSON object
// Sparkplug 3.0 defines.
var ErrMalformed = errors.New("malformed Sparkplug payload")

// ErrTooLarge is returned when a payload exceeds one of the Decoder's
// limits (Options): its size, its number of metrics, its number of
// protobuf fields or its nesting depth, or a birth certificate too large
// for the whole of the Decoder's state. The limits are checked before the
// payload is decoded, so an oversized payload costs no more memory than
// its own bytes.
var ErrTooLarge = errors.New("Sparkplug payload exceeds limit")

// ErrInvalidPayload is returned for a well-formed payload that breaks a
// Sparkplug rule the Decoder relies on: a seq outside 0–255, a timestamp
// out of range, a data metric with neither name nor alias, or a birth
// certificate that cannot define its aliases (a metric with no name or no
// datatype, two metrics with one alias, one name defined two ways).
var ErrInvalidPayload = errors.New("invalid Sparkplug payload")

// ErrNoBirth is returned for a message of an edge node session (NDATA,
// DBIRTH, DDATA) when the Decoder holds no birth certificate for the edge
// node or device: ember started after the birth, the Decoder evicted it to
// stay within its limits, or the publisher skipped it. The remedy is a
// rebirth request (see NeedsRebirth and RebirthRequest).
var ErrNoBirth = errors.New("no birth certificate on record")

// ErrOffline is returned for NDATA, DBIRTH or DDATA of an edge node, or
// DDATA of a device, whose death certificate the Decoder has seen and no
// birth since: the message belongs to no live session, so its aliases
// cannot be trusted. The remedy is a rebirth request.
var ErrOffline = errors.New("edge node or device is offline")

// ErrUnknownAlias is returned when a metric carries an alias that the
// birth certificate on record does not define, or one it defines under
// another name. The publisher's aliases and ember's have diverged; the
// remedy is a rebirth request.
var ErrUnknownAlias = errors.New("unknown metric alias")

// ErrUnknownMetric is returned when a data metric carries a name that the
// birth certificate on record does not define, or a datatype other than
// the birth's: the edge node reports metrics ember was not told of. The
// remedy is a rebirth request. It is also recorded in Metric.Err for a
// metric that has no datatype and no birth definition to take one from,
// such as an unknown member of a template instance.
var ErrUnknownMetric = errors.New("unknown metric")

// ErrInvalidValue is recorded in Metric.Err when a metric's value does not
// match its datatype: a value in the wrong field, an integer out of range
// for its type, an array whose length is not a whole number of elements,
// or a data set whose rows do not match its columns. The other metrics of
// the message decode normally.
var ErrInvalidValue = errors.New("invalid metric value")

// ErrUnsupportedType is recorded in Metric.Err for a datatype this package
// does not decode: Unknown, a number newer than Sparkplug 3.0, or a value
// carried only in a protobuf extension. The other metrics of the message
// decode normally.
var ErrUnsupportedType = errors.New("unsupported Sparkplug datatype")

// failf formats an error that describes the problem with format and args
// and wraps sentinel, so callers can match it with errors.Is.
func failf(sentinel error, format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, sentinel)...)
}
