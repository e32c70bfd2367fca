package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/internal/testkit"
)

func openStore(t *testing.T) *store.Store { return testkit.OpenStore(t) }

func TestTokenLifecycle(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tk := NewTokens(openStore(t), func() time.Time { return now })

	tok, rec, err := tk.Create("ci", Technician, time.Hour, "uid 0 (root)")
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != tokenLen || !strings.HasPrefix(tok, "ember_"+rec.ID+"_") {
		t.Fatalf("token %q does not carry its id %s", tok, rec.ID)
	}
	if strings.Contains(string(rec.Hash), tok[len(tokenPrefix)+idChars+1:]) {
		t.Fatal("the stored record holds the secret")
	}
	if _, _, err := tk.Create("ci", Viewer, 0, ""); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second live token named ci: %v, want ErrExists", err)
	}
	got, role, err := tk.Verify(tok)
	if err != nil || role != Technician || got.Name != "ci" {
		t.Fatalf("Verify: %v %v %v", got, role, err)
	}

	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"empty", "", ErrMalformedToken},
		{"garbage", "Bearer xyz", ErrMalformedToken},
		{"wrong secret", tok[:len(tok)-2] + flip(tok[len(tok)-2:]), ErrUnknownToken},
		{"unknown id", "ember_0000000000000000_" + tok[len(tokenPrefix)+idChars+1:], ErrUnknownToken},
		{"upper-case id", "ember_" + strings.ToUpper(rec.ID) + tok[len(tokenPrefix)+idChars:], ErrMalformedToken},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := tk.Verify(c.token); !errors.Is(err, c.want) {
				t.Fatalf("Verify(%q) = %v, want %v", c.token, err, c.want)
			}
		})
	}

	now = now.Add(time.Hour)
	if _, _, err := tk.Verify(tok); !errors.Is(err, ErrExpiredToken) {
		t.Fatalf("after expiry: %v", err)
	}
	if _, err := tk.Revoke("ci"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tk.Verify(tok); !errors.Is(err, ErrRevokedToken) {
		t.Fatalf("after revoke: %v", err)
	}
	if _, err := tk.Revoke("ci"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoking twice: %v", err)
	}
	// The name is free again once revoked.
	if _, _, err := tk.Create("ci", Viewer, 0, ""); err != nil {
		t.Fatal(err)
	}
	all, err := tk.List()
	if err != nil || len(all) != 2 {
		t.Fatalf("List: %d tokens, %v", len(all), err)
	}
}

func flip(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

func TestCreateRefuses(t *testing.T) {
	tk := NewTokens(openStore(t), nil)
	for _, c := range []struct {
		name string
		role Role
		ttl  time.Duration
	}{
		{"", Viewer, 0}, {"has space", Viewer, 0}, {"-dash", Viewer, 0}, {strings.Repeat("a", 65), Viewer, 0},
		{"ok", None, 0}, {"ok", Admin + 1, 0}, {"ok", Viewer, -time.Second},
	} {
		if _, _, err := tk.Create(c.name, c.role, c.ttl, ""); err == nil {
			t.Errorf("Create(%q, %v, %v) succeeded", c.name, c.role, c.ttl)
		}
	}
}

func TestMappingResolve(t *testing.T) {
	m, err := NewMapping(map[string][]string{
		"operator":   {"user:alice", "group:ember-ops"},
		"technician": {"gid:2000", "cert:line3-hmi", "anonymous"},
		"admin":      {"token:root-ish", "uid:4242"},
	}, 999, true)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		id   Identity
		want Role
	}{
		{"root", Identity{Kind: Unix, UID: 0}, Admin},
		{"daemon's own uid", Identity{Kind: Unix, UID: 999}, Admin},
		{"unmapped user", Identity{Kind: Unix, UID: 1000, GID: 1000, User: "bob"}, Viewer},
		{"by user name", Identity{Kind: Unix, UID: 1001, User: "alice"}, Operator},
		{"by uid", Identity{Kind: Unix, UID: 4242}, Admin},
		{"by primary gid", Identity{Kind: Unix, UID: 1002, GID: 2000}, Technician},
		{"by supplementary group", Identity{Kind: Unix, UID: 1003, Groups: []string{"ember-ops"}}, Operator},
		{"cert mapped", Identity{Kind: Cert, CertName: "line3-hmi"}, Technician},
		{"cert unmapped", Identity{Kind: Cert, CertName: "other"}, Viewer},
		{"token keeps its role", Identity{Kind: Token, TokenName: "ci", TokenRole: Operator}, Operator},
		{"token raised by config", Identity{Kind: Token, TokenName: "root-ish", TokenRole: Viewer}, Admin},
		{"anonymous allowed", Identity{Kind: Anonymous}, Technician},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := m.Resolve(c.id).Role; got != c.want {
				t.Fatalf("role %v, want %v", got, c.want)
			}
		})
	}
	closed, _ := NewMapping(nil, 999, false)
	if got := closed.Resolve(Identity{Kind: Anonymous}).Role; got != None {
		t.Fatalf("anonymous without allow_unauthenticated_tcp: %v", got)
	}
}

func TestNewMappingRefuses(t *testing.T) {
	for _, roles := range []map[string][]string{
		{"root": {"uid:0"}}, {"viewer": {"uid:-1"}}, {"viewer": {"uid:x"}}, {"viewer": {"host:a"}},
		{"viewer": {"user:"}}, {"viewer": {"token:bad name"}}, {"none": {"uid:1"}},
	} {
		if _, err := NewMapping(roles, 0, false); err == nil {
			t.Errorf("NewMapping(%v) succeeded", roles)
		}
	}
}

func TestCheck(t *testing.T) {
	viewer := Identity{Kind: Unix, UID: 1000, User: "alice", Role: Viewer}
	p, d := Check("/ember.v1.ModelService/Load", viewer)
	if d != Deny {
		t.Fatalf("viewer loading a model: %v", d)
	}
	want := "models.load requires role operator; you are uid 1000 (alice) with role viewer"
	if got := DenyMessage(p, viewer); got != want {
		t.Fatalf("message %q, want %q", got, want)
	}
	if _, d := Check("/grpc.health.v1.Health/Check", Identity{}); d != Allow {
		t.Fatalf("health for anonymous: %v", d)
	}
	if _, d := Check("/ember.v1.DeviceService/Info", Identity{}); d != Unauthenticated {
		t.Fatalf("info for anonymous: %v", d)
	}
	if _, d := Check("/ember.v1.Nope/Nope", Identity{Role: Admin}); d != Unlisted {
		t.Fatalf("unlisted method: %v", d)
	}
}

func TestLimits(t *testing.T) {
	l := Limits{MaxTokens: map[Role]int{Technician: 512}, MaxStreams: map[Role]int{Technician: 2}}
	if n, err := l.CheckMaxTokens(Technician, 0, 1024); err != nil || n != 512 {
		t.Fatalf("default over cap: %d %v", n, err)
	}
	var le *LimitError
	if _, err := l.CheckMaxTokens(Technician, 513, 256); !errors.As(err, &le) || le.Key != "auth.max_tokens.technician" {
		t.Fatalf("over cap: %v", err)
	}
	if n, err := l.CheckMaxTokens(Admin, 100000, 256); err != nil || n != 100000 {
		t.Fatalf("admin is not capped: %d %v", n, err)
	}
	s := NewStreams(l)
	id := Identity{Kind: Token, TokenName: "ci", Role: Technician}
	r1, _ := s.Acquire(id)
	r2, _ := s.Acquire(id)
	if _, err := s.Acquire(id); !errors.As(err, &le) || !strings.Contains(err.Error(), "auth.max_streams.technician") {
		t.Fatalf("third stream: %v", err)
	}
	r1()
	r1() // releasing twice counts once
	r3, err := s.Acquire(id)
	if err != nil {
		t.Fatal(err)
	}
	r2()
	r3()
	if len(s.active) != 0 {
		t.Fatalf("counts left behind: %v", s.active)
	}
}

// FuzzParseToken checks that ParseToken never panics, accepts only the
// canonical form, and gives back what a token was made of.
func FuzzParseToken(f *testing.F) {
	f.Add("ember_0123456789abcdef_" + strings.Repeat("A", 43))
	f.Add("ember_0123456789abcdef_" + strings.Repeat("_", 43))
	f.Add("ember_")
	f.Add("Bearer ember_0123456789abcdef_x")
	f.Add("ember_0123456789ABCDEF_" + strings.Repeat("A", 43))
	f.Fuzz(func(t *testing.T, s string) {
		id, secret, err := ParseToken(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedToken) {
				t.Fatalf("error %v is not ErrMalformedToken", err)
			}
			return
		}
		if len(id) != idChars || len(secret) != secretBytes {
			t.Fatalf("id %q secret %d bytes", id, len(secret))
		}
		if back := tokenPrefix + id + "_" + encodeSecret(secret); back != s {
			t.Fatalf("%q parsed but re-encodes as %q", s, back)
		}
	})
}
