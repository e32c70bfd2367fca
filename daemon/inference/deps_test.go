package inference_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/ember-edge/ember/internal/testkit"
)

// The llama.cpp binding (yzma, and the libffi it dlopens at init) belongs
// to package engine alone. Packages that prepare, queue, route or store
// work must not link it, and neither must their tests: they build and
// pass on a machine without libffi.so.8 or the llama.cpp libraries.
func TestOnlyTheEngineLinksTheBinding(t *testing.T) {
	noBinding := []string{
		"./daemon/inference", "./daemon/pipeline", "./daemon/jobs", "./daemon/mqtt", "./daemon/store",
		"./daemon/config", "./daemon/models", "./daemon/topic", "./daemon/audit", "./daemon/governor",
		"./daemon/sparkplug", "./daemon/gguf", "./sync/...", "./hw/...", "./cmd/emberctl/...", "./internal/testkit",
	}
	// Tests of these do no inference (jobs' tests run real inference
	// through the engine, so they are listed above for the package only).
	noBindingInTests := []string{
		"./daemon/inference", "./daemon/pipeline", "./daemon/mqtt", "./daemon/store", "./daemon/config",
		"./daemon/models", "./daemon/topic", "./daemon/governor", "./daemon/sparkplug", "./daemon/gguf",
		"./sync/...", "./hw/...", "./cmd/emberctl/...",
	}
	check := func(t *testing.T, test bool, pkgs []string) {
		args := []string{"list", "-deps", "-f", "{{if .Module}}{{.ImportPath}}{{end}}"}
		if test {
			args = append(args, "-test")
		}
		cmd := exec.Command("go", append(args, pkgs...)...)
		cmd.Dir = testkit.RepoRoot()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.Contains(dep, "hybridgroup/yzma") || strings.Contains(dep, "jupiterrider/ffi") || strings.HasSuffix(dep, "/daemon/engine") {
				t.Errorf("%s links %s", strings.Join(pkgs, " "), dep)
				return
			}
		}
	}
	t.Run("packages", func(t *testing.T) { check(t, false, noBinding) })
	t.Run("their tests", func(t *testing.T) { check(t, true, noBindingInTests) })
}
