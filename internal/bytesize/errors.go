package bytesize

import "errors"

// ErrSyntax is returned for text that is not a number of bytes with an
// optional unit.
var ErrSyntax = errors.New("want a size like 512MiB, 2GiB, 100MB or 4096")

// ErrUnit is returned for a number followed by letters that are not a
// unit, such as "12XB".
var ErrUnit = errors.New("unknown unit")

// ErrNegative is returned for a size below zero.
var ErrNegative = errors.New("a size cannot be negative")

// ErrRange is returned for a size beyond the largest Size, 2^63-1 bytes.
var ErrRange = errors.New("too large: the most is 8 EiB")
