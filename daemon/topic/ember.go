package topic

// Ember's own topics all live under ember/v1/<device>/; these functions
// are the one place their names are spelled.

// Prefix is the version root of ember's own topics.
const Prefix = "ember/v1/"

// Device is the root of one device's topics, without a trailing slash.
func Device(deviceID string) string { return Prefix + deviceID }

// Result is where a pipeline's (or direct request kind's) results go by
// default.
func Result(deviceID, name string) string { return Device(deviceID) + "/result/" + name }

// Error is where a pipeline's refusals and dead letters go by default.
func Error(deviceID, name string) string { return Device(deviceID) + "/error/" + name }

// Status carries the retained "online"/"offline" of the daemon.
func Status(deviceID string) string { return Device(deviceID) + "/status" }

// Telemetry carries the periodic telemetry snapshot.
func Telemetry(deviceID string) string { return Device(deviceID) + "/telemetry" }

// RequestPrefix is the direct request topic without its model level:
// a request for model M arrives on RequestPrefix(d) + M.
func RequestPrefix(deviceID string) string { return Device(deviceID) + "/infer/" }

// RequestFilter subscribes to direct requests for every model.
func RequestFilter(deviceID string) string { return RequestPrefix(deviceID) + "+" }

// ReplyPrefix is the root under which a requester may always ask for
// replies: ember/v1/<device>/reply/<client-id>/. Only the client with
// that id may use it on the embedded broker, which also lets that client
// read it without an ACL rule.
func ReplyPrefix(deviceID, clientID string) string {
	return Device(deviceID) + "/reply/" + clientID + "/"
}

// ReplyRoot is ReplyPrefix without a client: every reply topic starts
// with it.
func ReplyRoot(deviceID string) string { return Device(deviceID) + "/reply/" }

// DeviceFilter matches every topic of one device.
func DeviceFilter(deviceID string) string { return Device(deviceID) + "/#" }
