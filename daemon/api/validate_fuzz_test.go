package api

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/ember-edge/ember/daemon/auth"
	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
)

// FuzzValidators feeds arbitrary wire bytes to the request validators
// the authorization layer added: checkMaxTokens (as Generate, Chat and
// Submit use it) and checkCreateToken. They must not panic, must refuse
// with the documented codes, and what they accept must be in bounds.
func FuzzValidators(f *testing.F) {
	seed := func(m proto.Message) { b, _ := proto.Marshal(m); f.Add(b, uint8(2)) }
	seed(&emberv1.GenerateRequest{Prompt: "hi", Params: &emberv1.SamplingParams{MaxTokens: 600}})
	seed(&emberv1.GenerateRequest{Params: &emberv1.SamplingParams{MaxTokens: -1}})
	seed(&emberv1.CreateTokenRequest{Name: "ci", Role: "technician", ExpiresInSeconds: 3600})
	seed(&emberv1.CreateTokenRequest{Name: "a b", Role: "root", ExpiresInSeconds: -5})
	f.Add([]byte{0xff, 0x01}, uint8(9))
	limits := auth.Limits{MaxTokens: map[auth.Role]int{auth.Technician: 512, auth.Viewer: 1}}
	f.Fuzz(func(t *testing.T, data []byte, r uint8) {
		role := auth.Role(r % 6)
		var gen emberv1.GenerateRequest
		if proto.Unmarshal(data, &gen) == nil {
			before := proto.Clone(&gen)
			p, err := checkMaxTokens(limits, role, gen.Params, 256)
			if !proto.Equal(before, &gen) {
				t.Fatal("checkMaxTokens modified the request")
			}
			if err != nil {
				if c := status.Code(err); c != codes.InvalidArgument && c != codes.ResourceExhausted {
					t.Fatalf("code %v", c)
				}
			} else if capN, ok := limits.MaxTokens[role]; ok && (p == nil || p.MaxTokens <= 0 || int(p.MaxTokens) > capN) {
				t.Fatalf("accepted max_tokens %v over cap %d", p, capN)
			}
		}
		var ct emberv1.CreateTokenRequest
		if proto.Unmarshal(data, &ct) == nil {
			role, ttl, err := checkCreateToken(&ct)
			if err != nil {
				if status.Code(err) != codes.InvalidArgument {
					t.Fatalf("code %v", status.Code(err))
				}
				return
			}
			if role < auth.Viewer || role > auth.Admin || ttl < 0 || ttl > maxTokenTTL || auth.CheckTokenName(ct.Name) != nil {
				t.Fatalf("accepted %v: role %v ttl %v", &ct, role, ttl)
			}
			if ttl != time.Duration(ct.ExpiresInSeconds)*time.Second {
				t.Fatalf("ttl %v from %d seconds", ttl, ct.ExpiresInSeconds)
			}
		}
	})
}
