package api

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// prepareSocketDir creates dir, the directory of the gRPC socket, when it
// is missing, and refuses it when another local account could replace the
// socket in it: the socket is the device's access control (its mode and
// group say who may use emberd), so whoever can rename or delete entries in
// its directory could put their own socket in its place and see every
// request. Outside systemd the default directory is /tmp/ember-<uid>, a
// name anyone can create first.
//
// The directory, and every directory above it, must belong to root or to
// emberd's own user; the directory itself must not be writable by group or
// others unless it has the sticky bit (as /tmp does, so a socket directly
// in /tmp is fine), and no directory above it may be writable by others
// without the sticky bit. Group-writable parents are accepted: with
// per-user groups (Debian, Ubuntu) a user's own directories often are.
// Symbolic links on the way are checked too, and so is where they lead.
func prepareSocketDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create socket dir: %w", err)
	}
	return checkSocketDir(dir, os.Geteuid())
}

// checkSocketDir applies prepareSocketDir's rules for a daemon running as
// uid.
func checkSocketDir(dir string, uid int) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("socket dir %s: %w", dir, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return fmt.Errorf("socket dir %s: %w", dir, err)
	}
	for _, path := range []string{abs, real} {
		for p := path; ; p = filepath.Dir(p) {
			if err := checkSocketDirEntry(p, p == path, uid); err != nil {
				return fmt.Errorf("refusing socket dir %s: %w", dir, err)
			}
			if p == filepath.Dir(p) {
				break
			}
		}
		if real == abs {
			break
		}
	}
	return nil
}

// checkSocketDirEntry checks one step of the path to the socket dir; leaf
// is the socket dir itself.
func checkSocketDirEntry(path string, leaf bool, uid int) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: no owner information", path)
	}
	mode := fi.Mode()
	if owner := int(st.Uid); owner != 0 && owner != uid {
		return fmt.Errorf("%s (mode %v) belongs to %s, not to root or emberd's user %s, so that account could replace the socket; remove it, or set grpc.socket to a directory of emberd's user",
			path, mode, userName(owner), userName(uid))
	}
	if mode&fs.ModeSymlink != 0 || !mode.IsDir() || mode&fs.ModeSticky != 0 {
		return nil
	}
	switch {
	case leaf && mode&0o022 != 0:
		return fmt.Errorf("%s (owner %s, mode %v) is writable by other users, so they could replace the socket; chmod go-w %s", path, userName(int(st.Uid)), mode, path)
	case !leaf && mode&0o002 != 0:
		return fmt.Errorf("%s (owner %s, mode %v) is writable by every user and has no sticky bit, so anyone could replace the socket directory; chmod o-w %s", path, userName(int(st.Uid)), mode, path)
	}
	return nil
}

// userName is "name (uid N)", or "uid N" when the account is unknown.
func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return fmt.Sprintf("%s (uid %d)", u.Username, uid)
	}
	return "uid " + strconv.Itoa(uid)
}
