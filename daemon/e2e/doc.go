// Package e2e holds process-level tests of the whole daemon: they build
// the real emberd and emberctl, run emberd as a subprocess on a synthetic
// model, talk to it over MQTT (its embedded broker, or a real mosquitto it
// is a client of) and gRPC as a PLC, a technician and an operator would,
// kill it, fill its disk, and then open its database to check what it
// promised: nothing acknowledged is lost, nothing is done twice, and the
// file stays sound. The package has no code of its own; the tests are in
// package e2e_test.
package e2e
