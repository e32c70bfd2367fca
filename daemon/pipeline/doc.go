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
// control token is never read as one.
package pipeline
