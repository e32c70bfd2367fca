package auth

import "errors"

var (
	// ErrMalformedToken is returned for a string that is not an ember
	// token at all.
	ErrMalformedToken = errors.New("not an ember token")

	// ErrUnknownToken is returned for a well-formed token that the store
	// does not hold, or whose secret does not match: the two are not told
	// apart, so a caller cannot probe for ids.
	ErrUnknownToken = errors.New("unknown token")

	// ErrExpiredToken is returned for a token past its expiry.
	ErrExpiredToken = errors.New("token expired")

	// ErrRevokedToken is returned for a token that was revoked.
	ErrRevokedToken = errors.New("token revoked")

	// ErrBadTokenName is returned when a token name is not 1-64 letters,
	// digits, '.', '_' or '-'.
	ErrBadTokenName = errors.New("token name must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")

	// ErrUnknownRole is returned for a role name that is not one of
	// viewer, technician, operator, admin.
	ErrUnknownRole = errors.New("role is not one of viewer, technician, operator, admin")

	// ErrBadPrincipal is returned for a principal that is not
	// uid:N, gid:N, user:NAME, group:NAME, cert:NAME, token:NAME or
	// anonymous.
	ErrBadPrincipal = errors.New("principal is not uid:N, gid:N, user:NAME, group:NAME, cert:NAME, token:NAME or anonymous")
)
