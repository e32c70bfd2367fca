// Package redact rewrites JSON documents before they leave the device.
//
// A Redactor holds rules of three sorts, applied to a copy of a record's
// data (the record kept on the device stays whole):
//
//   - Pattern: a regular expression matched in every string value; each
//     match is replaced. Object keys are never touched.
//   - Field: a JSON path (input.operator, output.readings[0].serial,
//     output.readings[*].serial, *.password) whose value, whatever its
//     type, is replaced whole by the replacement string.
//   - Builtin: a named, tested pattern: email, phone, ipv4 or serial.
//
// Redact always returns compact, valid JSON: the input's key order,
// numbers and untouched strings are kept byte for byte (only whitespace
// between tokens goes), so that a hash of the output is stable.
package redact
