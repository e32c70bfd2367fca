package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fastDownload are options for tests: short timeouts, millisecond
// backoff, small checkpoints.
func fastDownload() DownloadOptions {
	return DownloadOptions{
		HeaderTimeout:   2 * time.Second,
		StallTimeout:    300 * time.Millisecond,
		CheckpointBytes: 16 << 10,
		BackoffMin:      time.Millisecond,
		BackoffMax:      10 * time.Millisecond,
	}
}

func fetch(t *testing.T, opts DownloadOptions, url string, size int64, path string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return NewDownloader(opts).Fetch(ctx, url, size, path)
}

func assertFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("file differs from the served one: %d bytes vs %d, first difference at byte %d", len(got), len(want), i)
	}
}

// rangeStarts returns the start offsets of the Range requests made.
func rangeStarts(log []servedRequest) []string {
	var out []string
	for _, r := range log {
		out = append(out, r.Range)
	}
	return out
}

func TestFetchResumesAfterFaults(t *testing.T) {
	content := randomBytes(1, 200<<10+123)
	cases := []struct {
		name string
		plan func(n int, r *http.Request) serveMode
		// wantRanges checks the requests the downloader made.
		check func(t *testing.T, log []servedRequest)
	}{
		{"clean", nil, func(t *testing.T, log []servedRequest) {
			if len(log) != 1 || log[0].Range != "" {
				t.Errorf("requests = %+v, want one plain GET", log)
			}
		}},
		{"connection cut three times", func(n int, _ *http.Request) serveMode {
			if n < 3 {
				return serveMode{cutAfter: 50 << 10}
			}
			return serveMode{}
		}, func(t *testing.T, log []servedRequest) {
			want := []string{"", "bytes=51200-", "bytes=102400-", "bytes=153600-"}
			if got := rangeStarts(log); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("ranges = %q, want %q", got, want)
			}
			for _, r := range log[1:] {
				if r.IfRange == "" {
					t.Errorf("resumed request without If-Range: %+v", r)
				}
			}
		}},
		{"stall", func(n int, _ *http.Request) serveMode {
			if n == 0 {
				return serveMode{stallAfter: 70 << 10}
			}
			return serveMode{}
		}, func(t *testing.T, log []servedRequest) {
			if len(log) != 2 || log[1].Range != "bytes=71680-" {
				t.Errorf("requests = %+v, want a resume from 71680", log)
			}
		}},
		{"truncated body without length", func(n int, _ *http.Request) serveMode {
			if n == 0 {
				return serveMode{shortBody: 1000}
			}
			return serveMode{}
		}, func(t *testing.T, log []servedRequest) {
			if len(log) != 2 || log[1].Range != "bytes=1000-" {
				t.Errorf("requests = %+v, want a resume from 1000", log)
			}
		}},
		{"server ignores Range", func(n int, _ *http.Request) serveMode {
			if n == 0 {
				return serveMode{cutAfter: 40 << 10}
			}
			return serveMode{ignoreRange: true}
		}, nil},
		{"416 then fine", func(n int, _ *http.Request) serveMode {
			switch n {
			case 0:
				return serveMode{cutAfter: 40 << 10}
			case 1:
				return serveMode{status: http.StatusRequestedRangeNotSatisfiable}
			}
			return serveMode{}
		}, func(t *testing.T, log []servedRequest) {
			if len(log) != 3 || log[2].Range != "" {
				t.Errorf("after a 416 the downloader should start over: %+v", log)
			}
		}},
		{"503s", func(n int, _ *http.Request) serveMode {
			if n < 4 {
				return serveMode{status: http.StatusServiceUnavailable}
			}
			return serveMode{}
		}, nil},
		{"slow headers", func(n int, _ *http.Request) serveMode {
			if n == 0 {
				return serveMode{headerDelay: 3 * time.Second}
			}
			return serveMode{}
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newArtServer(t)
			url := srv.put("/m.gguf", content)
			srv.setPlan(tc.plan)
			path := filepath.Join(t.TempDir(), "m.part")
			opts := fastDownload()
			if tc.name == "slow headers" {
				opts.HeaderTimeout = 200 * time.Millisecond
			}
			if err := fetch(t, opts, url, int64(len(content)), path); err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			assertFile(t, path, content)
			if tc.check != nil {
				tc.check(t, srv.log())
			}
		})
	}
}

func TestFetchRandomCutsIsByteIdentical(t *testing.T) {
	content := randomBytes(2, 512<<10+7)
	for seed := range uint64(5) {
		rng := rand.New(rand.NewPCG(seed, 99))
		srv := newArtServer(t)
		url := srv.put("/m.gguf", content)
		srv.setPlan(func(n int, _ *http.Request) serveMode {
			if n < 12 {
				return serveMode{cutAfter: 1 + rng.Int64N(80<<10)}
			}
			return serveMode{}
		})
		path := filepath.Join(t.TempDir(), "m.part")
		if err := fetch(t, fastDownload(), url, int64(len(content)), path); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		assertFile(t, path, content)
	}
}

// TestFetchETagChange: the remote file is replaced mid-download. The
// downloader must not glue the new file's tail to the old one's head.
func TestFetchETagChange(t *testing.T) {
	oldContent := randomBytes(3, 100<<10)
	newContent := randomBytes(4, 100<<10)
	for _, honoursIfRange := range []bool{true, false} {
		name := "server honours If-Range"
		if !honoursIfRange {
			name = "server ignores If-Range"
		}
		t.Run(name, func(t *testing.T) {
			srv := newArtServer(t)
			url := srv.put("/m.gguf", oldContent)
			srv.setPlan(func(n int, r *http.Request) serveMode {
				if n == 0 {
					return serveMode{cutAfter: 30 << 10}
				}
				if !honoursIfRange {
					r.Header.Del("If-Range")
				}
				return serveMode{}
			})
			path := filepath.Join(t.TempDir(), "m.part")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			opts := fastDownload()
			opts.Retry = func(error, time.Duration) { srv.put("/m.gguf", newContent) }
			if err := NewDownloader(opts).Fetch(ctx, url, int64(len(newContent)), path); err != nil {
				t.Fatal(err)
			}
			assertFile(t, path, newContent)
		})
	}
}

func TestFetchPermanentErrors(t *testing.T) {
	content := randomBytes(5, 10<<10)
	cases := []struct {
		name string
		size int64
		plan func(n int, r *http.Request) serveMode
		path string
		want error
	}{
		{"404", int64(len(content)), nil, "/missing", ErrRemoteNotFound},
		{"403", int64(len(content)), func(int, *http.Request) serveMode { return serveMode{status: 403} }, "/m", ErrHTTPStatus},
		{"server file larger", int64(len(content)) - 1, nil, "/m", ErrSizeMismatch},
		{"server file smaller", int64(len(content)) + 1, nil, "/m", ErrSizeMismatch},
		{"server file larger, no length", int64(len(content)) - 10, func(int, *http.Request) serveMode {
			return serveMode{shortBody: int64(len(content))}
		}, "/m", ErrSizeMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newArtServer(t)
			srv.put("/m", content)
			srv.setPlan(tc.plan)
			start := time.Now()
			err := fetch(t, fastDownload(), srv.URL+tc.path, tc.size, filepath.Join(t.TempDir(), "p"))
			if !errors.Is(err, tc.want) || !IsPermanent(err) {
				t.Fatalf("Fetch = %v, want a permanent %v", err, tc.want)
			}
			if time.Since(start) > 2*time.Second {
				t.Errorf("a permanent error took %v: it was retried", time.Since(start))
			}
		})
	}
}

// TestFetchResumesInANewDownloader: progress outlives the Downloader (and
// the process): a new one continues from the last checkpoint with a Range
// request, and bytes past the checkpoint that were never fsynced are
// dropped first.
func TestFetchResumesInANewDownloader(t *testing.T) {
	content := randomBytes(6, 300<<10)
	srv := newArtServer(t)
	url := srv.put("/m.gguf", content)
	srv.setPlan(func(n int, _ *http.Request) serveMode {
		if n == 0 {
			return serveMode{stallAfter: 100<<10 + 5}
		}
		return serveMode{}
	})
	path := filepath.Join(t.TempDir(), "m.part")
	ctx, cancel := context.WithCancel(context.Background())
	opts := fastDownload()
	opts.StallTimeout = time.Minute
	opts.Progress = func(done, _ int64) {
		if done >= 100<<10 {
			cancel() // the daemon stops mid-transfer
		}
	}
	err := NewDownloader(opts).Fetch(ctx, url, int64(len(content)), path)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("first Fetch = %v, want context.Canceled", err)
	}
	// Simulate bytes that reached the file after the last checkpoint
	// but not the disk: garbage past the recorded offset.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(bytes.Repeat([]byte{0xEE}, 5000))
	f.Close()

	srv.setPlan(nil)
	if err := fetch(t, fastDownload(), url, int64(len(content)), path); err != nil {
		t.Fatalf("resumed Fetch: %v", err)
	}
	assertFile(t, path, content)
	log := srv.log()
	last := log[len(log)-1]
	if !strings.HasPrefix(last.Range, "bytes=") || last.Range == "bytes=0-" {
		t.Fatalf("the new Downloader did not resume with a Range: %+v", log)
	}
	// And a third Downloader finds it complete without a request.
	n := len(log)
	if err := fetch(t, fastDownload(), url, int64(len(content)), path); err != nil {
		t.Fatal(err)
	}
	if len(srv.log()) != n {
		t.Errorf("a complete download was fetched again")
	}
}

// On a slow link progress is recorded by time as well as by bytes: a
// download far short of CheckpointBytes still checkpoints every
// CheckpointInterval, so a power cut loses seconds, not megabytes.
func TestFetchCheckpointsByTimeOnASlowLink(t *testing.T) {
	content := randomBytes(8, 256<<10)
	srv := newArtServer(t)
	url := srv.put("/m.gguf", content)
	path := filepath.Join(t.TempDir(), "m.part")
	opts := fastDownload()
	opts.Clock = newInstantClock()
	opts.RateLimit = 16 << 10 // 16 s of limiter time
	opts.CheckpointBytes = 1 << 30
	opts.CheckpointInterval = 2 * time.Second
	var offsets []int64
	opts.Progress = func(done, _ int64) {
		if data, err := os.ReadFile(progressPath(path)); err == nil {
			var rec progressRecord
			if json.Unmarshal(data, &rec) == nil && (len(offsets) == 0 || offsets[len(offsets)-1] != rec.Offset) {
				offsets = append(offsets, rec.Offset)
			}
		}
	}
	if err := fetch(t, opts, url, int64(len(content)), path); err != nil {
		t.Fatal(err)
	}
	assertFile(t, path, content)
	// 16 s at one checkpoint per 2 s: about 8 recorded offsets before the end.
	if len(offsets) < 5 {
		t.Fatalf("progress recorded at offsets %v; want one about every 2 s of a 16 s download", offsets)
	}
}

func TestFetchRateLimitWithFakeClock(t *testing.T) {
	content := randomBytes(7, 1<<20)
	srv := newArtServer(t)
	url := srv.put("/m.gguf", content)
	clock := newInstantClock()
	start := clock.Now()
	opts := fastDownload()
	opts.Clock = clock
	opts.RateLimit = 64 << 10
	if err := fetch(t, opts, url, int64(len(content)), filepath.Join(t.TempDir(), "p")); err != nil {
		t.Fatal(err)
	}
	// The fake clock advanced exactly by the waits the limiter asked
	// for: 1 MiB at 64 KiB/s is 16 s, less the initial burst.
	elapsed := clock.Now().Sub(start)
	burst := time.Duration(float64(NewLimiter(opts.RateLimit, 0).Burst()) / float64(opts.RateLimit) * float64(time.Second))
	if lo, hi := 16*time.Second-burst-time.Millisecond, 16*time.Second; elapsed < lo || elapsed > hi {
		t.Fatalf("1 MiB at 64 KiB/s took %v of limiter time, want %v..%v", elapsed, lo, hi)
	}
}

func TestLimiterDecisions(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := NewLimiter(1000, 500) // 1000 B/s, bursts of 500
	steps := []struct {
		at   time.Duration
		n    int
		want time.Duration
	}{
		{0, 500, 0},                      // the burst is free
		{0, 100, 100 * time.Millisecond}, // then debt: 100 B at 1000 B/s
		{100 * time.Millisecond, 100, 100 * time.Millisecond},
		{10 * time.Second, 400, 0}, // refilled, capped at the burst
		{10 * time.Second, 200, 100 * time.Millisecond},
	}
	for i, s := range steps {
		if got := l.Reserve(t0.Add(s.at), s.n); got != s.want {
			t.Errorf("step %d: Reserve(+%v, %d) = %v, want %v", i, s.at, s.n, got, s.want)
		}
	}
	if got := NewLimiter(0, 0).Reserve(t0, 1<<30); got != 0 {
		t.Errorf("unlimited Reserve = %v", got)
	}
}

// onlyAfter is a window closed until open, then open for ever.
type onlyAfter struct{ open time.Time }

func (w onlyAfter) Allowed(now time.Time) bool   { return !now.Before(w.open) }
func (w onlyAfter) Next(now time.Time) time.Time { return w.open }

// closesAt is open until shut, closed for an hour, then open again.
type closesAt struct{ shut time.Time }

func (w closesAt) Allowed(now time.Time) bool {
	return now.Before(w.shut) || !now.Before(w.shut.Add(time.Hour))
}
func (w closesAt) Next(now time.Time) time.Time { return w.shut.Add(time.Hour) }

func TestFetchWaitsForItsWindow(t *testing.T) {
	content := randomBytes(8, 64<<10)
	srv := newArtServer(t)
	url := srv.put("/m.gguf", content)
	clock := newInstantClock()
	open := clock.Now().Add(3 * time.Hour)
	opts := fastDownload()
	opts.Clock = clock
	opts.Window = onlyAfter{open}
	var firstByteAt time.Time
	opts.Progress = func(done, _ int64) {
		if firstByteAt.IsZero() {
			firstByteAt = clock.Now()
		}
	}
	if err := fetch(t, opts, url, int64(len(content)), filepath.Join(t.TempDir(), "p")); err != nil {
		t.Fatal(err)
	}
	if firstByteAt.Before(open) {
		t.Fatalf("bytes arrived at %v, before the window opened at %v", firstByteAt, open)
	}
}

func TestFetchStopsWhenTheWindowCloses(t *testing.T) {
	content := randomBytes(9, 256<<10)
	srv := newArtServer(t)
	url := srv.put("/m.gguf", content)
	clock := newInstantClock()
	opts := fastDownload()
	opts.Clock = clock
	opts.RateLimit = 64 << 10 // 4 s of fake time for the file
	shut := clock.Now().Add(2 * time.Second)
	opts.Window = closesAt{shut}
	var during int64
	opts.Progress = func(done, _ int64) {
		now := clock.Now()
		if !now.Before(shut) && now.Before(shut.Add(time.Hour)) {
			during++
		}
	}
	path := filepath.Join(t.TempDir(), "p")
	if err := fetch(t, opts, url, int64(len(content)), path); err != nil {
		t.Fatal(err)
	}
	assertFile(t, path, content)
	if during > 1 {
		t.Errorf("%d reads happened while the window was closed", during)
	}
	if log := srv.log(); len(log) != 2 || log[1].Range == "" {
		t.Errorf("want the transfer to stop at the window and resume with a Range: %+v", log)
	}
}

func TestDailyWindow(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2025, 3, 1, h, m, 0, 0, time.UTC) }
	night := Daily{Start: 22 * time.Hour, End: 6 * time.Hour, Location: time.UTC}
	day := Daily{Start: 9 * time.Hour, End: 17 * time.Hour, Location: time.UTC}
	cases := []struct {
		w       Daily
		now     time.Time
		allowed bool
		next    time.Time
	}{
		{night, at(23, 0), true, at(23, 0)},
		{night, at(3, 0), true, at(3, 0)},
		{night, at(12, 0), false, at(22, 0)},
		{day, at(8, 59), false, at(9, 0)},
		{day, at(17, 0), false, at(9, 0).AddDate(0, 0, 1)},
		{day, at(10, 0), true, at(10, 0)},
		{Daily{}, at(10, 0), true, at(10, 0)},
	}
	for _, c := range cases {
		if got := c.w.Allowed(c.now); got != c.allowed {
			t.Errorf("%+v.Allowed(%v) = %v", c.w, c.now, got)
		}
		if got := c.w.Next(c.now); !got.Equal(c.next) {
			t.Errorf("%+v.Next(%v) = %v, want %v", c.w, c.now, got, c.next)
		}
	}
}

func TestBackoffDoublesWithJitter(t *testing.T) {
	b := newBackoff(time.Second, 10*time.Second)
	b.rand = func() float64 { return 0 }
	var got []time.Duration
	for range 6 {
		got = append(got, b.next())
	}
	want := []time.Duration{1, 2, 4, 8, 10, 10}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("steps = %v, want %v s", got, want)
		}
	}
	b.rand = func() float64 { return 0.999 }
	if d := b.next(); d < 5*time.Second || d > 10*time.Second {
		t.Errorf("jittered step %v outside [max/2, max]", d)
	}
	b.reset()
	b.rand = func() float64 { return 0 }
	if d := b.next(); d != time.Second {
		t.Errorf("after reset: %v", d)
	}
}

func TestParseContentRange(t *testing.T) {
	cases := []struct {
		in           string
		start, total int64
		ok           bool
	}{
		{"bytes 0-99/100", 0, 100, true},
		{"bytes 50-99/*", 50, -1, true},
		{"bytes */100", -1, 100, true},
		{"bytes 9-3/100", 0, 0, false},
		{"items 0-1/2", 0, 0, false},
		{"bytes 0-1", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, c := range cases {
		s, tot, ok := parseContentRange(c.in)
		if ok != c.ok || (ok && (s != c.start || tot != c.total)) {
			t.Errorf("parseContentRange(%q) = %d, %d, %v", c.in, s, tot, ok)
		}
	}
}
