// Package mqtt connects emberd to MQTT: an embedded broker (mochi-mqtt)
// that PLCs and sensors publish to directly, and a client (paho) for an
// external broker such as mosquitto. Both hand messages to the job
// manager and acknowledge a QoS 1 message only after its job is
// committed, pipelined: a message's writes are queued for the group
// commit as it arrives, and acknowledgements go out in arrival order as
// commits land (the embedded broker's per-connection acker, the client's
// per-worker one). The client never makes paho's delivery wait, which
// would stall the PUBACKs of its own publishes: a QoS 1 message a full
// backlog would refuse is held, unacknowledged, until there is room.
// Both publish results back, and a retained status
// (online/offline) with a last will.
package mqtt
