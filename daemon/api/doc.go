// Package api serves emberd's gRPC services (protos/ember/v1) on a unix
// socket and, when configured, on TCP with TLS. It translates between the
// wire types and the daemon's packages and maps their errors to status
// codes a technician can act on; it holds no state of its own.
package api
