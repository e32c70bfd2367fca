package audit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ember-edge/ember/daemon/store"
)

// These tests kill a real process with SIGKILL while it appends to the
// chain, then open the same files: no deferred function runs, only what
// bbolt made durable exists.

const childEnv = "AUDIT_SIGKILL_CHILD"

// TestSIGKILLChild is the child's body: it appends entries from several
// goroutines (so group commits carry many) until killed. Run directly it
// does nothing.
func TestSIGKILLChild(t *testing.T) {
	dir := os.Getenv(childEnv)
	if dir == "" {
		return
	}
	key, _, err := LoadKey(filepath.Join(dir, "audit.key"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	st, err := store.Open(filepath.Join(dir, "ember.db"), store.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	l := New(Options{Store: st, Key: key, DeviceID: "dev-1", Upstream: true, MaxEntries: 50})
	for g := range 4 {
		go func() {
			for i := 0; ; i++ {
				if err := l.Write(context.Background(), "test.append", fmt.Sprintf("g%d", g), nil, map[string]any{"i": i}); err != nil {
					fmt.Fprintln(os.Stderr, "child:", err)
					os.Exit(3)
				}
				if i%20 == 0 {
					if err := l.Maintain(); err != nil {
						fmt.Fprintln(os.Stderr, "child:", err)
						os.Exit(3)
					}
				}
			}
		}()
	}
	time.Sleep(time.Minute)
	os.Exit(0)
}

func TestChainSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	c := newChain(t, Options{Upstream: true, MaxEntries: 50})
	var last uint64
	for life := range 5 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSIGKILLChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"="+c.dir)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300*time.Millisecond + time.Duration(life)*70*time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		if err := cmd.Wait(); err == nil || stderr.Len() > 0 {
			t.Fatalf("life %d: child ended with %v: %s", life, err, stderr.String())
		}
		st, l := c.open(t)
		r := mustVerify(t, l)
		wantOK(t, r)
		if r.Last < last {
			t.Fatalf("life %d: chain went back from %d to %d", life, last, r.Last)
		}
		// Mark everything synced so that pruning (and its checkpoints)
		// runs in the next life too.
		if seq, err := st.OutboxStats(); err == nil {
			st.MarkSynced(Priority, seq.LastSeq)
		}
		last = r.Last
		st.Close()
		t.Logf("life %d: %d entries held, %d to %d, anchor %d", life, r.Entries, r.First, r.Last, r.Anchor)
	}
	if last == 0 {
		t.Fatal("the child wrote nothing")
	}
	st, l := c.open(t)
	write(t, l, 1)
	es, _ := l.List(last, 1)
	if len(es) != 1 || es[0].Index != last+1 {
		t.Fatalf("after the kills the next entry is %+v, want index %d", es, last+1)
	}
	wantOK(t, mustVerify(t, l))
	st.Close()
}
