package sparkplug

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Namespace is the first level of every Sparkplug B topic.
const Namespace = "spBv1.0"

// MessageType is the message type level of a Sparkplug topic.
type MessageType uint8

// The Sparkplug B message types. The zero MessageType is invalid.
const (
	NBIRTH MessageType = iota + 1
	NDEATH
	DBIRTH
	DDEATH
	NDATA
	DDATA
	NCMD
	DCMD
	// STATE is a host application's own birth and death
	// (spBv1.0/STATE/<host_id>), with a JSON payload.
	STATE
)

var messageTypeNames = [...]string{"", "NBIRTH", "NDEATH", "DBIRTH", "DDEATH", "NDATA", "DDATA", "NCMD", "DCMD", "STATE"}

// String returns the topic level of t, such as "NBIRTH".
func (t MessageType) String() string {
	if t > 0 && int(t) < len(messageTypeNames) {
		return messageTypeNames[t]
	}
	return fmt.Sprintf("MessageType(%d)", uint8(t))
}

// IsDevice reports whether messages of type t concern a device and so
// have a device_id level: DBIRTH, DDEATH, DDATA and DCMD.
func (t MessageType) IsDevice() bool {
	return t == DBIRTH || t == DDEATH || t == DDATA || t == DCMD
}

// parseMessageType returns the MessageType that a topic level names, or
// false. STATE is not one: it is recognised by the topic's shape.
func parseMessageType(s string) (MessageType, bool) {
	for t := NBIRTH; t < STATE; t++ {
		if messageTypeNames[t] == s {
			return t, true
		}
	}
	return 0, false
}

// Topic is a parsed Sparkplug B topic:
//
//	spBv1.0/<group_id>/<message_type>/<edge_node_id>[/<device_id>]
//	spBv1.0/STATE/<host_id>
type Topic struct {
	Type MessageType
	// Group, EdgeNode and Device are empty for STATE; Device is empty for
	// the node message types.
	Group    string
	EdgeNode string
	Device   string
	// HostID is set for STATE only.
	HostID string
}

// ParseTopic parses an MQTT topic name into a Sparkplug B Topic. It
// returns an error wrapping ErrInvalidTopic that says what is wrong for
// anything else, including Sparkplug A (spAv1.0) topics and topic
// filters with wildcards.
func ParseTopic(s string) (Topic, error) {
	t, err := parseTopic(s)
	if err != nil {
		return Topic{}, fmt.Errorf("sparkplug: topic %s: %w", clip(s), err)
	}
	return t, nil
}

func parseTopic(s string) (Topic, error) {
	levels := strings.Split(s, "/")
	if levels[0] != Namespace {
		if strings.HasPrefix(levels[0], "spAv") {
			return Topic{}, failf(ErrInvalidTopic, "Sparkplug A is not supported")
		}
		return Topic{}, failf(ErrInvalidTopic, "namespace %s is not %q", clip(levels[0]), Namespace)
	}
	if len(levels) == 3 && levels[1] == "STATE" {
		if err := checkID("host_id", levels[2]); err != nil {
			return Topic{}, err
		}
		return Topic{Type: STATE, HostID: levels[2]}, nil
	}
	if len(levels) < 4 || len(levels) > 5 {
		return Topic{}, failf(ErrInvalidTopic, "%d levels, want %s/<group_id>/<message_type>/<edge_node_id>[/<device_id>] or %s/STATE/<host_id>", len(levels), Namespace, Namespace)
	}
	typ, ok := parseMessageType(levels[2])
	if !ok {
		return Topic{}, failf(ErrInvalidTopic, "unknown message type %s", clip(levels[2]))
	}
	t := Topic{Type: typ, Group: levels[1], EdgeNode: levels[3]}
	if err := checkID("group_id", t.Group); err != nil {
		return Topic{}, err
	}
	if err := checkID("edge_node_id", t.EdgeNode); err != nil {
		return Topic{}, err
	}
	switch {
	case typ.IsDevice() && len(levels) == 4:
		return Topic{}, failf(ErrInvalidTopic, "%v needs a device_id", typ)
	case !typ.IsDevice() && len(levels) == 5:
		return Topic{}, failf(ErrInvalidTopic, "%v takes no device_id", typ)
	case len(levels) == 5:
		t.Device = levels[4]
		if err := checkID("device_id", t.Device); err != nil {
			return Topic{}, err
		}
	}
	return t, nil
}

// checkID applies the specification's rules for a group, edge node,
// device or host ID: a non-empty UTF-8 string without the MQTT wildcards.
// The '/' separator cannot occur, since the topic was split on it.
func checkID(what, id string) error {
	switch {
	case id == "":
		return failf(ErrInvalidTopic, "empty %s", what)
	case strings.ContainsAny(id, "+#"):
		return failf(ErrInvalidTopic, "%s %s contains an MQTT wildcard", what, clip(id))
	case !utf8.ValidString(id):
		return failf(ErrInvalidTopic, "%s %s is not valid UTF-8", what, clip(id))
	}
	return nil
}

// clipLen is the most of a topic, or a level of one, that an error
// quotes: enough to recognise it, while a hostile 64 KiB topic does not
// become a 256 KiB log line.
const clipLen = 96

// clip quotes s for an error message, cut short past clipLen bytes.
func clip(s string) string {
	if len(s) <= clipLen {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:clipLen]) + fmt.Sprintf("... (%d bytes)", len(s))
}

// String returns the MQTT topic name of t.
func (t Topic) String() string {
	if t.Type == STATE {
		return Namespace + "/STATE/" + t.HostID
	}
	s := Namespace + "/" + t.Group + "/" + t.Type.String() + "/" + t.EdgeNode
	if t.Device != "" {
		s += "/" + t.Device
	}
	return s
}
