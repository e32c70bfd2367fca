package api

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// otherUID is an account that is neither root nor the test's.
const otherUID = 4242

func TestSocketDir(t *testing.T) {
	for _, tc := range []struct {
		name string
		// setup builds the case under base and returns the socket dir.
		setup func(t *testing.T, base string) string
		// owned needs root: it chowns files to otherUID.
		owned bool
		// want is "" for accepted, else substrings of the error.
		want []string
	}{
		{name: "created when missing", setup: func(t *testing.T, base string) string {
			return filepath.Join(base, "run", "ember")
		}},
		{name: "own private dir", setup: func(t *testing.T, base string) string {
			return mkdir(t, base, "ember", 0o700)
		}},
		{name: "own dir readable by all", setup: func(t *testing.T, base string) string {
			return mkdir(t, base, "ember", 0o755)
		}},
		{name: "the temp dir itself, sticky", setup: func(t *testing.T, base string) string {
			return os.TempDir()
		}},
		{name: "own dir world-writable with sticky bit", setup: func(t *testing.T, base string) string {
			return mkdir(t, base, "ember", 0o777|os.ModeSticky)
		}},
		{name: "group-writable", setup: func(t *testing.T, base string) string {
			return mkdir(t, base, "ember", 0o770)
		}, want: []string{"/ember (owner ", "mode drwxrwx---", "writable by other users", "chmod go-w "}},
		{name: "world-writable without sticky bit", setup: func(t *testing.T, base string) string {
			return mkdir(t, base, "ember", 0o777)
		}, want: []string{"mode drwxrwxrwx", "writable by other users"}},
		{name: "parent world-writable without sticky bit", setup: func(t *testing.T, base string) string {
			return mkdir(t, mkdir(t, base, "shared", 0o777), "ember", 0o700)
		}, want: []string{"/shared (owner ", "writable by every user and has no sticky bit"}},
		{name: "parent group-writable", setup: func(t *testing.T, base string) string {
			return mkdir(t, mkdir(t, base, "src", 0o775), "ember", 0o700)
		}},
		{name: "pre-created by another user", owned: true, setup: func(t *testing.T, base string) string {
			return chown(t, mkdir(t, base, "ember-1000", 0o755))
		}, want: []string{"/ember-1000 (mode drwxr-xr-x) belongs to uid 4242, not to root or emberd's user"}},
		{name: "parent owned by another user", owned: true, setup: func(t *testing.T, base string) string {
			return mkdir(t, chown(t, mkdir(t, base, "theirs", 0o755)), "ember", 0o700)
		}, want: []string{"/theirs (mode drwxr-xr-x) belongs to uid 4242"}},
		{name: "symlink owned by another user", owned: true, setup: func(t *testing.T, base string) string {
			real := mkdir(t, base, "real", 0o700)
			link := filepath.Join(base, "link")
			if err := os.Symlink(real, link); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(link, otherUID, otherUID); err != nil {
				t.Fatal(err)
			}
			return link
		}, want: []string{"/link (mode Lrwxrwxrwx) belongs to uid 4242"}},
		{name: "own symlink into another user's dir", owned: true, setup: func(t *testing.T, base string) string {
			theirs := chown(t, mkdir(t, base, "theirs", 0o755))
			link := filepath.Join(base, "link")
			if err := os.Symlink(theirs, link); err != nil {
				t.Fatal(err)
			}
			return link
		}, want: []string{"/theirs (mode drwxr-xr-x) belongs to uid 4242"}},
		{name: "own symlink to own dir", setup: func(t *testing.T, base string) string {
			link := filepath.Join(base, "link")
			if err := os.Symlink(mkdir(t, base, "real", 0o700), link); err != nil {
				t.Fatal(err)
			}
			return link
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.owned && os.Geteuid() != 0 {
				t.Skip("needs root to give files to another user")
			}
			dir := tc.setup(t, t.TempDir())
			err := prepareSocketDir(dir)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("prepareSocketDir(%s): %v", dir, err)
				}
				if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
					t.Fatalf("socket dir not there: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("prepareSocketDir(%s) accepted it", dir)
			}
			for _, w := range append([]string{"refusing socket dir " + dir + ": "}, tc.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// The socket dir check runs where emberd listens: a pre-created directory
// another account can write stops it before any socket exists there, and a
// socket directly in the temp dir (sticky, as tests use it) still works.
func TestListenUnixChecksTheSocketDir(t *testing.T) {
	bad := mkdir(t, t.TempDir(), "ember", 0o777)
	if lis, err := listenUnix(filepath.Join(bad, "ember.sock"), "0660"); err == nil {
		lis.Close()
		t.Fatal("listened in a world-writable directory")
	}
	if _, err := os.Lstat(filepath.Join(bad, "ember.sock")); !os.IsNotExist(err) {
		t.Errorf("a socket was made in the refused directory: %v", err)
	}

	sock := filepath.Join(os.TempDir(), fmt.Sprintf("ember-socketdir-test-%d.sock", os.Getpid()))
	lis, err := listenUnix(sock, "0600")
	if err != nil {
		t.Fatalf("socket directly in %s: %v", os.TempDir(), err)
	}
	defer os.Remove(sock)
	defer lis.Close()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func mkdir(t *testing.T, parent, name string, mode os.FileMode) string {
	t.Helper()
	dir := filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Chmod, not Mkdir's mode: the umask must not soften the case.
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	return dir
}

func chown(t *testing.T, path string) string {
	t.Helper()
	if err := os.Lchown(path, otherUID, otherUID); err != nil {
		t.Fatal(err)
	}
	return path
}
