// Package collectortest runs the fleet side of confirmed delivery for
// tests and benchmarks: in-process devices (each a real store in its own
// directory and a real uplink with uplink.confirm: collector), real
// collectors (MQTT 5 shared subscriptions, each with its own pgsink
// pool), and a fleet simulation that drives many devices through a
// testkit.FaultProxy into a broker, collectors and PostgreSQL, then
// counts what was lost and what was sent again. sync/collector's tests
// and daemon/bench use it; nothing else should.
package collectortest
