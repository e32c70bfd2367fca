// Package durable writes files so that a power cut leaves the old file or
// the new one, never a mix: through a temporary file in the same
// directory that is fsynced, renamed over the target, and made durable by
// fsyncing the directory.
package durable

import (
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile replaces path with what write puts into a temporary file,
// which ends with mode perm. On any error the temporary file is removed
// and path is untouched.
func WriteFile(path string, perm fs.FileMode, write func(*os.File) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := write(tmp); err != nil {
		return err
	}
	if err := tmp.Chmod(perm); err != nil { // CreateTemp makes it 0600
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	done = true
	return SyncDir(dir)
}

// SyncDir fsyncs a directory, so that renames and creations in it survive
// a power cut.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
