package models

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ember-edge/ember/daemon/gguf"
	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/internal/durable"
)

// Progress reports an import's advance.
type Progress struct {
	Phase string // "validating", "copying", "syncing"
	Done  int64
	Total int64
}

var (
	namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)
	nameUnsafe  = regexp.MustCompile(`[^a-z0-9._:-]+`)
)

// NameFromPath derives a model name from a file name:
// "/x/Qwen2.5-0.5B-Instruct-Q4_K_M.gguf" becomes "qwen2.5-0.5b-instruct-q4_k_m".
func NameFromPath(path string) string {
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	base = strings.ToLower(base)
	base = nameUnsafe.ReplaceAllString(base, "-")
	base = strings.Trim(base, "-._:")
	if len(base) > 64 {
		base = base[:64]
	}
	return base
}

// Import validates the GGUF file at src, copies it into the model store
// while hashing it, and registers it as name. The copy is written to a
// temporary file, fsynced and renamed, so a crash leaves either no model
// or a complete one; files are named by their sha256, so importing the
// same file twice stores it once.
func (r *Registry) Import(ctx context.Context, src, name string, replace bool, progress func(Progress)) (Entry, error) {
	if progress == nil {
		progress = func(Progress) {}
	}
	if name == "" {
		name = NameFromPath(src)
	}
	if !namePattern.MatchString(name) {
		return Entry{}, fmt.Errorf("import %s: name %q must be 1-64 letters, digits, '.', '_', ':' or '-'", src, name)
	}
	if _, err := r.Get(name); err == nil && !replace {
		return Entry{}, fmt.Errorf("import %s as %q: %w (pass replace to overwrite)", src, name, ErrExists)
	}
	for _, m := range r.cfg {
		if m.Name == name {
			return Entry{}, fmt.Errorf("import %s as %q: %w by the config, which always wins", src, name, ErrExists)
		}
	}

	progress(Progress{Phase: "validating"})
	f, err := gguf.Open(src)
	if err != nil {
		return Entry{}, fmt.Errorf("import %s: %w", src, err)
	}
	if err := os.MkdirAll(r.storeDir, 0o750); err != nil {
		return Entry{}, fmt.Errorf("import %s: %w", src, err)
	}
	if err := checkFree(r.storeDir, f.Size); err != nil {
		return Entry{}, fmt.Errorf("import %s: %w", src, err)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	sum, tmp, err := copyHashed(ctx, src, r.storeDir, f.Size, progress)
	if err != nil {
		return Entry{}, fmt.Errorf("import %s: %w", src, err)
	}
	final := filepath.Join(r.storeDir, sum+".gguf")
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return Entry{}, fmt.Errorf("import %s: %w", src, err)
	}
	if err := durable.SyncDir(r.storeDir); err != nil {
		return Entry{}, fmt.Errorf("import %s: %w", src, err)
	}
	meta := f.Metadata()
	rec := store.ModelRecord{
		Name: name, Path: final, SHA256: sum, Size: f.Size,
		Architecture: meta.Architecture, FileType: meta.FileTypeName, Parameters: meta.ParameterCount,
		License: meta.License, Source: "import:" + src, AddedAt: time.Now().UTC(),
	}
	if err := r.st.PutModel(rec); err != nil {
		return Entry{}, fmt.Errorf("import %s: %w", src, err)
	}
	return fromRecord(rec), nil
}

// copyHashed copies src into a temp file in dir, hashing as it goes, and
// fsyncs it. It returns the hex sha256 and the temp file's path.
func copyHashed(ctx context.Context, src, dir string, size int64, progress func(Progress)) (string, string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", "", err
	}
	defer in.Close()
	out, err := os.CreateTemp(dir, ".import-*.tmp")
	if err != nil {
		return "", "", err
	}
	ok := false
	defer func() {
		if !ok {
			out.Close()
			os.Remove(out.Name())
		}
	}()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	var done int64
	last := time.Time{}
	for {
		if err := ctx.Err(); err != nil {
			return "", "", err
		}
		n, rerr := in.Read(buf)
		if n > 0 {
			h.Write(buf[:n])
			if _, err := out.Write(buf[:n]); err != nil {
				return "", "", fmt.Errorf("write to model store: %w", err)
			}
			done += int64(n)
			if time.Since(last) > 100*time.Millisecond {
				progress(Progress{Phase: "copying", Done: done, Total: size})
				last = time.Now()
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return "", "", rerr
		}
	}
	progress(Progress{Phase: "copying", Done: done, Total: size})
	if done != size {
		return "", "", fmt.Errorf("%s changed while importing (%d bytes read, %d expected)", src, done, size)
	}
	progress(Progress{Phase: "syncing", Done: done, Total: size})
	if err := out.Sync(); err != nil {
		return "", "", fmt.Errorf("sync model store: %w", err)
	}
	if err := out.Close(); err != nil {
		return "", "", err
	}
	ok = true
	return hex.EncodeToString(h.Sum(nil)), out.Name(), nil
}

// ErrNoSpace is returned when a file would not fit on the target disk.
var ErrNoSpace = errors.New("not enough free disk space")

func checkFree(dir string, need int64) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("check free space in %s: %w", dir, err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	if free < need {
		return fmt.Errorf("%w in %s: %d bytes needed, %d free", ErrNoSpace, dir, need, free)
	}
	return nil
}

// hashPath returns the hex sha256 of the file at path.
func hashPath(path string, stop <-chan struct{}, progress func(done int64)) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	var done int64
	for {
		select {
		case <-stop:
			return "", errors.New("stopped")
		default:
		}
		n, err := f.Read(buf)
		h.Write(buf[:n])
		done += int64(n)
		if progress != nil && done%(256<<20) < int64(n) {
			progress(done)
		}
		if err == io.EOF {
			return hex.EncodeToString(h.Sum(nil)), nil
		}
		if err != nil {
			return "", err
		}
	}
}
