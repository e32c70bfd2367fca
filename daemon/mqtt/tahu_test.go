package mqtt

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ember-edge/ember/daemon/store"
)

// tahuEdge runs the Eclipse Tahu edge node (testdata/tahu/edge.js) with
// credentials against addr, installing the client first
// (scripts/tahu-client.sh, idempotent). It never skips: the interop
// test needs the real client.
func tahuEdge(t *testing.T, addr, user, pass string) (string, error) {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(filepath.Join(root, "scripts", "tahu-client.sh")).CombinedOutput(); err != nil {
		t.Fatalf("install the Tahu client (scripts/tahu-client.sh): %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join("testdata", "tahu", "edge.js"), "mqtt://"+addr, user, pass)
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(root, ".cache", "tahu", "node_modules"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestTahuEdgeNode: the Sparkplug reference edge node, configured for an
// anonymous broker (empty username and password), gets its births and
// DDATA through a sparkplugb pipeline where anonymous clients are
// allowed, and is refused with "not authorized" where they are not.
func TestTahuEdgeNode(t *testing.T) {
	t.Run("anonymous allowed", func(t *testing.T) {
		tb := startBrokerWithPipelines(t, "", `pipelines:
  - name: edge
    match: spBv1.0/plant/DDATA/+/+
    decode: sparkplugb
    fields: {temp: temp}
    prompt: "Press temperature {{.temp}}"
`)
		out, err := tahuEdge(t, tb.addr, "", "")
		if err != nil {
			t.Fatalf("edge node: %v\n%s", err, out)
		}
		js, err := tb.st.Jobs(store.JobFilter{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(js) != 1 || !strings.Contains(string(js[0].Request), "81.25") {
			t.Fatalf("jobs %d, want one from the DDATA with temp 81.25: %v\n%s", len(js), js, out)
		}
	})
	t.Run("anonymous off", func(t *testing.T) {
		tb := startBrokerWith(t, usersYAML(t), "")
		out, err := tahuEdge(t, tb.addr, "", "")
		if err == nil || !strings.Contains(out, "refused 5") || !strings.Contains(strings.ToLower(out), "not authorized") {
			t.Fatalf("edge node: %v\n%s", err, out)
		}
	})
}
