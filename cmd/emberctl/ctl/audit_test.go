package ctl

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"

	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
)

type fakeAudit struct {
	emberv1.UnimplementedAuditServiceServer
	verify *emberv1.VerifyAuditResponse
}

func (f *fakeAudit) Verify(context.Context, *emberv1.VerifyAuditRequest) (*emberv1.VerifyAuditResponse, error) {
	return f.verify, nil
}

func (f *fakeAudit) List(context.Context, *emberv1.ListAuditRequest) (*emberv1.ListAuditResponse, error) {
	return &emberv1.ListAuditResponse{First: 1, Last: 1, Entries: []*emberv1.AuditEntry{
		{Index: 1, Action: "model.load", Actor: "emberd", Ok: true, DetailsJson: `{"model":"q"}`}}}, nil
}

func serveAudit(t *testing.T, f *fakeAudit) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	emberv1.RegisterAuditServiceServer(gs, f)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	return sock
}

func TestAuditVerifyJSON(t *testing.T) {
	cases := []struct {
		name     string
		resp     *emberv1.VerifyAuditResponse
		code     int
		firstBad any
	}{
		{"ok", &emberv1.VerifyAuditResponse{Ok: true, Entries: 12}, 0, nil},
		{"broken", &emberv1.VerifyAuditResponse{Ok: false, Entries: 12, HasFirstBad: true, FirstBad: 5, Reason: "entry 5 is missing"}, 1, float64(5)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sock := serveAudit(t, &fakeAudit{verify: tc.resp})
			out, _, code := runCtl(t, "--socket", sock, "audit", "verify", "-o", "json")
			if code != tc.code {
				t.Fatalf("exit code %d, want %d (output %s)", code, tc.code, out)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("output %q: %v", out, err)
			}
			if got["ok"] != tc.resp.Ok || got["entries"] != float64(12) || got["first_bad"] != tc.firstBad {
				t.Errorf("output = %v", got)
			}
			if _, ok := got["first_bad"]; !ok {
				t.Error("first_bad is absent; want null when ok")
			}
		})
	}
	sock := serveAudit(t, &fakeAudit{})
	out, _, code := runCtl(t, "--socket", sock, "audit", "ls", "-o", "json")
	if code != 0 || !json.Valid([]byte(out)) {
		t.Fatalf("audit ls: code %d, output %s", code, out)
	}
}
