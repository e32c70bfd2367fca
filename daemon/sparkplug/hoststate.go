package sparkplug

import (
	"encoding/json"
	"time"
)

// HostState is the payload of a Sparkplug 3.0 STATE message, by which a
// host application tells edge nodes whether it is online.
type HostState struct {
	Online bool
	// Timestamp is when the host application's MQTT session began; edge
	// nodes use it to ignore a late OFFLINE from an earlier session.
	Timestamp time.Time
}

// parseHostState decodes a STATE payload: a JSON object with a boolean
// "online" and a "timestamp" in milliseconds since the Unix epoch, both
// required. Sparkplug 2's plain "ONLINE" and "OFFLINE" payloads, on the
// topic STATE/<host_id>, are not accepted.
func parseHostState(b []byte) (*HostState, error) {
	var v struct {
		Online    *bool   `json:"online"`
		Timestamp *uint64 `json:"timestamp"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, failf(ErrMalformed, "STATE payload is not the JSON object Sparkplug 3.0 defines: %v", err)
	}
	if v.Online == nil || v.Timestamp == nil {
		return nil, failf(ErrMalformed, `STATE payload lacks "online" or "timestamp"`)
	}
	ts, err := millis(*v.Timestamp)
	if err != nil {
		return nil, failf(ErrMalformed, "STATE timestamp %d out of range", *v.Timestamp)
	}
	return &HostState{Online: *v.Online, Timestamp: ts}, nil
}
