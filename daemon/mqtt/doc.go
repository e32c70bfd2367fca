// Package mqtt connects emberd to MQTT: an embedded broker (mochi-mqtt)
// that PLCs and sensors publish to directly, and a client (paho) for an
// external broker such as mosquitto. Both hand messages to the job
// manager and acknowledge a QoS 1 message only after its job is
// committed: the embedded broker's PUBACK waits in its publish hook, the
// client acknowledges manually. Both publish results back, and a retained
// status (online/offline) with a last will.
package mqtt
