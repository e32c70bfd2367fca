package api

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/ember-edge/ember/daemon/auth"
)

// The authorization interceptors: every call is given an auth.Identity
// (from the unix peer's credentials, the client certificate, or a bearer
// token), checked against auth.Policy, and refused with PERMISSION_DENIED
// or UNAUTHENTICATED, or run with the identity in its context.

type identityKey struct{}

func withIdentity(ctx context.Context, id auth.Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// identityFrom returns the identity the interceptor established.
func identityFrom(ctx context.Context) (auth.Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(auth.Identity)
	return id, ok
}

// callerRole is the caller's role, None when no identity was set.
func callerRole(ctx context.Context) auth.Role {
	id, _ := identityFrom(ctx)
	return id.Role
}

// identify works out who is calling. On the unix socket the kernel's
// uid decides and tokens are ignored; on TCP with TLS a bearer token
// names the caller, else a verified client certificate; over plaintext
// TCP a token is refused, since anyone on the path could have read it.
func (s *Server) identify(ctx context.Context) (auth.Identity, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return auth.Identity{}, nil
	}
	addr := ""
	if p.Addr != nil {
		addr = p.Addr.String()
	}
	switch info := p.AuthInfo.(type) {
	case unixPeer:
		if info.Known {
			return s.mapping.Resolve(info.identity()), nil
		}
		return s.mapping.Resolve(auth.Identity{Addr: addr}), nil
	case credentials.TLSInfo:
		if tok, ok := bearer(ctx); ok {
			return s.tokenIdentity(tok, addr)
		}
		if name := certName(info.State.VerifiedChains); name != "" {
			return s.mapping.Resolve(auth.Identity{Kind: auth.Cert, CertName: name, Addr: addr}), nil
		}
	default:
		if _, ok := bearer(ctx); ok {
			return auth.Identity{}, status.Error(codes.Unauthenticated,
				"bearer tokens are refused over TCP without TLS, where anyone on the path could read them; ask for grpc.tls on emberd")
		}
	}
	return s.mapping.Resolve(auth.Identity{Kind: auth.Anonymous, Addr: addr}), nil
}

func (s *Server) tokenIdentity(tok, addr string) (auth.Identity, error) {
	if s.tokens == nil {
		return auth.Identity{}, status.Error(codes.Unauthenticated, "this emberd keeps no tokens (no store)")
	}
	rec, role, err := s.tokens.Verify(tok)
	switch {
	case errors.Is(err, auth.ErrMalformedToken), errors.Is(err, auth.ErrUnknownToken),
		errors.Is(err, auth.ErrExpiredToken), errors.Is(err, auth.ErrRevokedToken):
		return auth.Identity{}, status.Errorf(codes.Unauthenticated, "bearer token refused: %v", err)
	case err != nil:
		return auth.Identity{}, status.Errorf(codes.Internal, "checking the bearer token: %v", err)
	}
	return s.mapping.Resolve(auth.Identity{Kind: auth.Token, TokenName: rec.Name, TokenRole: role, Addr: addr}), nil
}

// bearer returns the token of an "authorization: Bearer <token>" header.
func bearer(ctx context.Context) (string, bool) {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		scheme, tok, ok := strings.Cut(v, " ")
		if ok && strings.EqualFold(scheme, "bearer") {
			return strings.TrimSpace(tok), true
		}
	}
	return "", false
}

// certName names a verified client certificate: its subject CN, else its
// first DNS or URI SAN.
func certName(chains [][]*x509.Certificate) string {
	if len(chains) == 0 || len(chains[0]) == 0 {
		return ""
	}
	c := chains[0][0]
	switch {
	case c.Subject.CommonName != "":
		return c.Subject.CommonName
	case len(c.DNSNames) > 0:
		return c.DNSNames[0]
	case len(c.URIs) > 0:
		return c.URIs[0].String()
	}
	return ""
}

// authorize identifies the caller of method and checks the policy. It
// returns the context to run the call with, and the function that ends
// the call's hold on the identity's inference slot.
func (s *Server) authorize(ctx context.Context, method string) (context.Context, func(), error) {
	id, err := s.identify(ctx)
	if err != nil {
		return ctx, nil, err
	}
	perm, decision := auth.Check(method, id)
	switch decision {
	case auth.Unlisted:
		s.log.Error("RPC without an entry in auth.Policy refused", "method", method)
		return ctx, nil, status.Errorf(codes.PermissionDenied, "%s has no entry in the policy table, so no one may call it", method)
	case auth.Unauthenticated:
		return ctx, nil, status.Errorf(codes.Unauthenticated,
			"%s needs an identity: present a bearer token (--token, $EMBER_TOKEN) or a client certificate (--cert, --key)", perm.Name)
	case auth.Deny:
		msg := auth.DenyMessage(perm, id)
		s.deps.Audit.Record(ctx, "auth.denied", id.Actor(), errors.New(msg),
			map[string]any{"rpc": method, "permission": perm.Name, "required": perm.Role.String(), "role": id.Role.String()})
		return ctx, nil, status.Error(codes.PermissionDenied, msg)
	}
	release := func() {}
	if perm == auth.Infer {
		if release, err = s.streams.Acquire(id); err != nil {
			return ctx, nil, status.Error(codes.ResourceExhausted, err.Error())
		}
	}
	return withIdentity(ctx, id), release, nil
}

func (s *Server) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	ctx, release, err := s.authorize(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	defer release()
	return h(ctx, req)
}

func (s *Server) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	ctx, release, err := s.authorize(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	defer release()
	return h(srv, &identifiedStream{ServerStream: ss, ctx: ctx})
}

// identifiedStream carries the caller's identity in its context.
type identifiedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *identifiedStream) Context() context.Context { return s.ctx }
