package systemd_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ember-edge/ember/internal/testkit"
)

// The tests share one `make install` into a staging directory, made on
// first use and removed when they end.
var (
	installOnce sync.Once
	installDir  string
	installErr  error
	installLog  []byte
	tempDirs    []string
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range tempDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// installed returns the DESTDIR of a `make install` with the default
// prefix. Tests must not modify it.
func installed(t *testing.T) string {
	t.Helper()
	installOnce.Do(func() {
		installDir, installLog, installErr = makeInstall()
	})
	if installErr != nil {
		t.Fatalf("make install: %v\n%s", installErr, installLog)
	}
	return installDir
}

// makeInstall runs `make install` into a new staging directory with the
// given extra make arguments, building into a private directory so it never
// races a build in the checkout's bin/.
func makeInstall(args ...string) (destdir string, out []byte, err error) {
	destdir, err = os.MkdirTemp("", "ember-install-")
	if err != nil {
		return "", nil, err
	}
	build, err := os.MkdirTemp("", "ember-install-build-")
	if err != nil {
		return "", nil, err
	}
	tempDirs = append(tempDirs, destdir, build)
	out, err = runMake(append([]string{"DESTDIR=" + destdir, "INSTALL_BUILD=" + build}, args...)...)
	return destdir, out, err
}

// runMake runs `make install` in the repository with args.
func runMake(args ...string) ([]byte, error) {
	cmd := exec.Command("make", append([]string{"--no-print-directory", "-C", testkit.RepoRoot(), "install"}, args...)...)
	// A make running the tests hands its jobserver to children through
	// MAKEFLAGS; its descriptors are not open here.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "MAKEFLAGS=") || strings.HasPrefix(kv, "MFLAGS=") || strings.HasPrefix(kv, "MAKELEVEL=")
	})
	return cmd.CombinedOutput()
}

// unit is a parsed systemd unit file: section -> key -> values in order.
type unit map[string]map[string][]string

func (u unit) get(section, key string) []string { return u[section][key] }

// one returns the last value of key, as systemd applies a repeated
// single-valued setting.
func (u unit) one(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not KEY=VALUE in a section: %q", path, n, line)
			}
			k = strings.TrimSpace(k)
			u[section][k] = append(u[section][k], strings.TrimSpace(v))
		}
	}
	return u
}

// sourcePath is a file in this directory.
func sourcePath(name string) string {
	return filepath.Join(testkit.RepoRoot(), "systemd", name)
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func needRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root (%s); .ci/run runs the suite as root", why)
	}
}
