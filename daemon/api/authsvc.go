package api

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ember-edge/ember/daemon/auth"
	"github.com/ember-edge/ember/daemon/store"
	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
)

type authService struct {
	emberv1.UnimplementedAuthServiceServer
	s *Server
}

var kindNames = map[auth.Kind]string{auth.Unix: "unix", auth.Cert: "certificate", auth.Token: "token", auth.Anonymous: "anonymous"}

func (x *authService) WhoAmI(ctx context.Context, _ *emberv1.WhoAmIRequest) (*emberv1.WhoAmIResponse, error) {
	id, _ := identityFrom(ctx)
	out := &emberv1.WhoAmIResponse{
		Kind: kindNames[id.Kind], Identity: id.String(), Role: id.Role.String(), Principals: id.Principals(),
		Uid: int32(id.UID), Gid: int32(id.GID), User: id.User, Group: id.Group, CertName: id.CertName, TokenName: id.TokenName,
	}
	for _, p := range auth.Permissions {
		if p.Role != auth.None && p.Allows(id.Role) {
			out.Permissions = append(out.Permissions, p.Name)
		}
	}
	return out, nil
}

// maxTokenTTL bounds a token's expiry so that the arithmetic stays in
// range; a token meant to live longer is one that never expires.
const maxTokenTTL = 100 * 365 * 24 * time.Hour

// checkCreateToken validates a CreateToken request and returns its role
// and lifetime.
func checkCreateToken(req *emberv1.CreateTokenRequest) (auth.Role, time.Duration, error) {
	if err := auth.CheckTokenName(req.Name); err != nil {
		return auth.None, 0, status.Error(codes.InvalidArgument, err.Error())
	}
	role, err := auth.ParseRole(req.Role)
	if err != nil {
		return auth.None, 0, status.Error(codes.InvalidArgument, err.Error())
	}
	if req.ExpiresInSeconds < 0 || time.Duration(req.ExpiresInSeconds) > maxTokenTTL/time.Second {
		return auth.None, 0, status.Errorf(codes.InvalidArgument, "expires_in_seconds %d is not from 0 (never) to %d", req.ExpiresInSeconds, int64(maxTokenTTL/time.Second))
	}
	return role, time.Duration(req.ExpiresInSeconds) * time.Second, nil
}

func (x *authService) tokensReady() error {
	if x.s.tokens == nil {
		return status.Error(codes.Unavailable, "this emberd keeps no tokens (no store)")
	}
	return nil
}

func (x *authService) CreateToken(ctx context.Context, req *emberv1.CreateTokenRequest) (*emberv1.CreateTokenResponse, error) {
	role, ttl, err := checkCreateToken(req)
	if err != nil {
		return nil, err
	}
	if err := x.tokensReady(); err != nil {
		return nil, err
	}
	tok, rec, err := x.s.tokens.Create(req.Name, role, ttl, actor(ctx))
	// A token whose creation cannot be audited is never shown, so never
	// usable.
	if aerr := x.s.audited(ctx, "token.create", err, map[string]any{"token": req.Name, "token_role": role.String(), "expires_in": ttl.String()}); aerr != nil {
		return nil, aerr
	}
	if err != nil {
		return nil, toStatus(x.s.log, err)
	}
	return &emberv1.CreateTokenResponse{Token: tok, Info: x.tokenPB(rec)}, nil
}

func (x *authService) ListTokens(ctx context.Context, _ *emberv1.ListTokensRequest) (*emberv1.ListTokensResponse, error) {
	if err := x.tokensReady(); err != nil {
		return nil, err
	}
	recs, err := x.s.tokens.List()
	if err != nil {
		return nil, toStatus(x.s.log, err)
	}
	out := &emberv1.ListTokensResponse{}
	for _, r := range recs {
		out.Tokens = append(out.Tokens, x.tokenPB(r))
	}
	return out, nil
}

func (x *authService) RevokeToken(ctx context.Context, req *emberv1.RevokeTokenRequest) (*emberv1.TokenInfo, error) {
	if err := x.tokensReady(); err != nil {
		return nil, err
	}
	rec, err := x.s.tokens.Revoke(req.Name)
	if aerr := x.s.audited(ctx, "token.revoke", err, map[string]any{"token": req.Name}); aerr != nil {
		return nil, aerr
	}
	if err != nil {
		return nil, toStatus(x.s.log, err)
	}
	return x.tokenPB(rec), nil
}

func (x *authService) tokenPB(r store.TokenRecord) *emberv1.TokenInfo {
	out := &emberv1.TokenInfo{Name: r.Name, Role: r.Role, Id: r.ID, CreatedAt: timestamppb.New(r.CreatedAt), CreatedBy: r.CreatedBy, State: "active"}
	if !r.ExpiresAt.IsZero() {
		out.ExpiresAt = timestamppb.New(r.ExpiresAt)
		if !time.Now().Before(r.ExpiresAt) {
			out.State = "expired"
		}
	}
	if !r.RevokedAt.IsZero() {
		out.RevokedAt, out.State = timestamppb.New(r.RevokedAt), "revoked"
	}
	return out
}
