// Package pipeline turns MQTT messages into inference requests.
//
// A Pipeline is compiled from its config: a topic filter, a payload decoder
// (JSON, text or Sparkplug B), field extraction, a prompt template, an
// output spec (text, or JSON constrained by a grammar made from a JSON
// Schema), and where results go. Prepare applies it to one message and
// returns the Request that becomes a durable job, or an InputError whose
// reason becomes a dead letter.
//
// Prompts are Go text/templates. Values from a payload are data: the
// template is parsed once from the config and a value can never change it;
// a string value renders JSON-quoted by default ("press 4" with its quotes,
// newlines escaped), so it is clearly delimited from the instructions
// around it (`{{raw .x}}` inserts it bare); and, in raw mode, values are
// passed to the engine as data segments, so text in them that spells a
// control token is never read as one. What a template function makes of
// a value (raw, upper, round, printf …) or of the topic (topic, level) is
// data too; a value rendered into a topic cannot add levels or
// wildcards; and text output is published only under publish.allow.
//
// Before a message becomes a job, the guard (package pipeline/guard)
// scores its data for instruction-like text: the pipeline's guard setting
// flags it on the request or quarantines it as an InputError wrapping
// ErrQuarantined.
package pipeline
