// Package auth says who a caller is and what it may do: identities (a
// unix socket peer's uid and gid, a client certificate, a bearer token),
// the four roles, the one policy table that gives every RPC its required
// permission, the mapping from principals in the config to roles, API
// bearer tokens, and per-identity limits.
//
// It knows nothing of gRPC, so that the HTTP API can enforce the same
// policy: daemon/api turns a connection into an Identity and asks Check.
package auth
