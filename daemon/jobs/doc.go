// Package jobs runs the durable job queue: it turns MQTT messages (through
// their pipelines), direct MQTT requests and gRPC submissions into jobs
// committed to the store before they are acknowledged, dispatches queued
// jobs to the engine by priority and rate, and writes each job's one
// result (or dead letter) to the outbox in the same transaction that ends
// the job, then publishes it.
//
// Nothing acknowledged is lost: Ingest returns nil only once every job the
// message makes is durable (or was already, for a redelivery), and a job
// interrupted by a crash runs again at start. A job whose output cannot be
// produced or validated ends as a dead letter with the reason, never as a
// silent drop.
package jobs
