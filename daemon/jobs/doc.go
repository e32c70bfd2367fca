// Package jobs runs the durable job queue. Its parts each do one thing:
//
//   - Intake turns MQTT messages (through their pipelines), direct MQTT
//     requests and gRPC submissions into jobs committed to the store
//     before they are acknowledged, or into dead letters.
//   - Dispatcher starts queued jobs by priority, within each pipeline's
//     rate and the governors' holds, as the engine has room.
//   - Executor runs one job through the Inference interface and writes its
//     one result (or dead letter) to the outbox in the transaction that
//     ends the job, then publishes it.
//   - Events fans job changes out to watchers; Maintainer keeps the store
//     within its bounds.
//
// New wires them over one store, one pipeline.Set and one Inference.
//
// Nothing acknowledged is lost: Intake.Ingest returns nil only once every
// job the message makes is durable (or was already, for a redelivery),
// and a job interrupted by a crash runs again at start. A job whose output
// cannot be produced or validated ends as a dead letter with the reason,
// never as a silent drop. The package does not import the llama.cpp
// binding: the daemon wires Inference to the engine.
package jobs
