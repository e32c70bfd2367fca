package sparkplug

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	sparkplugb "github.com/ember-edge/ember/protos/sparkplug/b/v1"
)

// RebirthMetric is the NCMD metric that asks an edge node to publish its
// NBIRTH and every DBIRTH again.
const RebirthMetric = "Node Control/Rebirth"

// NeedsRebirth reports whether err means that the Decoder lacks, or has
// lost track of, the birth certificate of the message's edge node or
// device (ErrNoBirth, ErrOffline, ErrUnknownAlias, ErrUnknownMetric). A
// Sparkplug host answers that by asking the edge node to rebirth: see
// RebirthRequest.
func NeedsRebirth(err error) bool {
	return errors.Is(err, ErrNoBirth) || errors.Is(err, ErrOffline) ||
		errors.Is(err, ErrUnknownAlias) || errors.Is(err, ErrUnknownMetric)
}

// RebirthRequest returns the NCMD topic and payload that ask the edge
// node of t (any topic of the edge node or one of its devices) to rebirth,
// timestamped now. Publish it at QoS 0, not retained, as the
// specification says.
//
// An edge node answers every request with its whole birth sequence, so a
// caller should send at most one request per edge node until the NBIRTH
// arrives or a timeout passes, rather than one per failed message: a
// burst of data after ember restarts would otherwise become a burst of
// births.
func RebirthRequest(t Topic, now time.Time) (topic string, payload []byte, err error) {
	if t.Type == STATE || t.Group == "" || t.EdgeNode == "" {
		return "", nil, fmt.Errorf("sparkplug: rebirth request for %q: %w", t.String(), failf(ErrInvalidTopic, "not an edge node or device topic"))
	}
	ms := uint64(now.UnixMilli())
	p := &sparkplugb.Payload{
		Timestamp: proto.Uint64(ms),
		Metrics: []*sparkplugb.Payload_Metric{{
			Name:      proto.String(RebirthMetric),
			Timestamp: proto.Uint64(ms),
			Datatype:  proto.Uint32(uint32(TypeBoolean)),
			Value:     &sparkplugb.Payload_Metric_BooleanValue{BooleanValue: true},
		}},
	}
	payload, err = proto.Marshal(p)
	if err != nil {
		return "", nil, fmt.Errorf("sparkplug: encoding rebirth request: %w", err)
	}
	cmd := Topic{Type: NCMD, Group: t.Group, EdgeNode: t.EdgeNode}
	return cmd.String(), payload, nil
}
