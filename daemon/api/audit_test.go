package api

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
)

// Inference calls leave metadata entries (never the prompt), admin calls
// leave theirs, the chain verifies; and once entries cannot be written,
// both kinds of call fail instead of passing unaudited.
func TestCallsAreAuditedAndFailWhenTheyCannotBe(t *testing.T) {
	h := start(t, harnessOpts{audit: true})
	ctx := context.Background()
	h.generate(t, &emberv1.GenerateRequest{Prompt: "the secret prompt", Params: greedy(3)})
	if _, err := h.infer.Embed(ctx, &emberv1.EmbedRequest{Inputs: []string{"secret words"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.models.Load(ctx, &emberv1.LoadModelRequest{Name: "spare", Context: 256}); err != nil {
		t.Fatal(err)
	}
	al := emberv1.NewAuditServiceClient(h.conn)
	list, err := al.List(ctx, &emberv1.ListAuditRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range list.Entries {
		actions = append(actions, e.Action)
		if strings.Contains(e.DetailsJson, "secret") {
			t.Errorf("entry %d holds the prompt: %s", e.Index, e.DetailsJson)
		}
		if strings.HasPrefix(e.Action, "inference.") && (!strings.Contains(e.DetailsJson, `"model":"tiny"`) ||
			!strings.Contains(e.DetailsJson, `"prompt_tokens":`) || !strings.Contains(e.Actor, "unix socket")) {
			t.Errorf("inference entry %+v lacks model, prompt tokens or actor", e)
		}
	}
	if strings.Join(actions, " ") != "inference.generate inference.embed model.load" {
		t.Fatalf("actions %v", actions)
	}
	v, err := al.Verify(ctx, &emberv1.VerifyAuditRequest{})
	if err != nil || !v.Ok || v.Entries != 3 || v.HasFirstBad {
		t.Fatalf("verify = %+v, %v", v, err)
	}

	h.st.Close() // every write fails from now on
	_, err = h.models.Unload(ctx, &emberv1.UnloadModelRequest{Name: "spare"})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "took effect") {
		t.Errorf("unload with the audit log unwritable = %v, want FailedPrecondition saying it took effect", err)
	}
	stream, err := h.infer.Generate(ctx, &emberv1.GenerateRequest{Prompt: "hi", Params: greedy(2)})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := collect(t, stream); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("generate with the audit log unwritable ended with %v, want FailedPrecondition", err)
	}
}
