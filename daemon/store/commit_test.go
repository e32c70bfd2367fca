package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestGroupCommitBatchesConcurrentWritesAndIsolatesAFailure(t *testing.T) {
	s := openTest(t)
	const writers = 200
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			e := Enqueue{Job: job("p", fmt.Sprint(i))}
			if i == 100 {
				// One writer's pipeline is full and rejects: it must fail
				// alone, not its batch.
				e = Enqueue{Job: job("full", "x"), Backlog: 1, Overflow: OverflowReject}
				s.Enqueue(ctx, e, t0)
			}
			_, errs[i] = s.Enqueue(ctx, e, t0)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if (i == 100) != (err != nil) {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	st := s.CommitStats()
	if st.Batches >= st.Writes {
		t.Errorf("%d writes in %d transactions: no batching", st.Writes, st.Batches)
	}
	if backlog, _ := s.Backlog(); backlog["p"] != writers-1 {
		t.Errorf("backlog %v, want %d", backlog, writers-1)
	}
}

func TestWritesAfterCloseFail(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "ember.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.Enqueue(ctx, Enqueue{Job: job("p", "x")}, t0); !errors.Is(err, ErrClosed) {
		t.Fatalf("enqueue after close: %v", err)
	}
}

func TestAFullDiskIsBackpressureNotCorruption(t *testing.T) {
	dir := smallFS(t, 2<<20)
	path := filepath.Join(dir, "ember.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 8<<10)
	for i := range big {
		big[i] = 'a' + byte(i%26)
	}
	var acked []uint64
	var full error
	for i := 0; i < 10000 && full == nil; i++ {
		r, err := s.Enqueue(ctx, Enqueue{Job: Job{Pipeline: "p", Request: req(string(big) + fmt.Sprint(i))}}, t0)
		if err != nil {
			full = err
			break
		}
		acked = append(acked, r.ID)
	}
	if !errors.Is(full, ErrDiskFull) {
		t.Fatalf("filling a 2 MiB file system ended with %v, want ErrDiskFull", full)
	}
	s.Close()
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen after ENOSPC: %v", err)
	}
	defer s.Close()
	if err := s.Check(); err != nil {
		t.Fatalf("consistency after ENOSPC: %v", err)
	}
	for _, id := range acked {
		if _, err := s.Job(id); err != nil {
			t.Fatalf("acknowledged job %d lost: %v", id, err)
		}
	}
}

// smallFS mounts a tmpfs of size bytes for the test. It needs root, as
// CI has; tests never skip it.
func smallFS(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test mounts a small tmpfs to fill it and needs root (CI runs as root): run it with sudo")
	}
	dir := t.TempDir()
	if out, err := execCommand("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { execCommand("umount", "-l", dir) })
	return dir
}
