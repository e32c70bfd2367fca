package tlsconf

import "errors"

// ErrNoCertificate is returned when a certificate or CA file holds no
// PEM-encoded certificate, e.g. a key file given where a certificate was
// meant.
var ErrNoCertificate = errors.New("no PEM certificate in it")

// ErrIncomplete is returned when a certificate is given without its key,
// a key without its certificate, or a server has neither.
var ErrIncomplete = errors.New("a certificate and its key go together")
