package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ember-edge/ember/internal/durable"
)

// DownloadOptions tune a Downloader. Zero values take the defaults noted.
type DownloadOptions struct {
	// Client makes the requests; nil is a client with no overall timeout
	// (attempts are bounded by HeaderTimeout and StallTimeout instead,
	// since a large model over a slow link legitimately takes hours).
	Client *http.Client
	// RateLimit caps the transfer in bytes per second; 0 is unlimited.
	RateLimit int64
	// Window says when transfers may run; nil is always. A transfer
	// running when the window closes stops at once, its progress kept.
	Window Window
	// Clock drives the rate limit, the window and the retry backoff; nil
	// is the system clock.
	Clock Clock
	// HeaderTimeout bounds one attempt's connect, TLS handshake and wait
	// for response headers; default 30s.
	HeaderTimeout time.Duration
	// StallTimeout ends an attempt that receives no byte for this long;
	// default 60s.
	StallTimeout time.Duration
	// CheckpointBytes is how much is received between checkpoints (file
	// fsynced, offset recorded); default 8 MiB. A power cut loses at most
	// this much.
	CheckpointBytes int64
	// CheckpointInterval also checkpoints after this long with bytes
	// received, so that a slow link (where 8 MiB is many minutes) loses
	// little to a power cut; default 1s.
	CheckpointInterval time.Duration
	// BackoffMin and BackoffMax bound the doubling wait between failed
	// attempts; defaults 1s and 5m.
	BackoffMin, BackoffMax time.Duration
	// Progress, when set, is called as bytes arrive with the bytes on disk
	// and the total.
	Progress func(done, total int64)
	// Retry, when set, is called after each failed attempt that will be
	// retried, with the error and the wait before the next one.
	Retry func(err error, wait time.Duration)
	// Logger gets one line per attempt outcome; nil discards.
	Logger *slog.Logger
	// AllowHTTP fetches plain-http URLs from any host. Without it a URL,
	// or a redirect, that is plain http to a host that is not loopback
	// fails with ErrInsecureURL. Redirects to another host, or from https
	// to http, fail with ErrRedirect either way.
	AllowHTTP bool
}

// Downloader fetches files over HTTP(S) with Range requests, resuming
// where a broken transfer stopped, even across restarts: progress lives
// next to the partial file (PATH.progress), so a new Downloader on the
// same path carries on. It is safe for one Fetch at a time per path.
type Downloader struct {
	opts    DownloadOptions
	client  *http.Client
	clock   Clock
	window  Window
	limiter *Limiter
	log     *slog.Logger

	// hook is the crash-test hook; see Options.hook.
	hook func(point string) error
}

// NewDownloader returns a Downloader with opts.
func NewDownloader(opts DownloadOptions) *Downloader {
	d := &Downloader{opts: opts, client: opts.Client, clock: opts.Clock, window: opts.Window, log: opts.Logger}
	if d.client == nil {
		d.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	} else {
		c := *d.client // the caller's client keeps its own policy
		d.client = &c
	}
	d.client.CheckRedirect = d.checkRedirect
	if d.clock == nil {
		d.clock = SystemClock
	}
	if d.window == nil {
		d.window = Always{}
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.opts.HeaderTimeout <= 0 {
		d.opts.HeaderTimeout = 30 * time.Second
	}
	if d.opts.StallTimeout <= 0 {
		d.opts.StallTimeout = 60 * time.Second
	}
	if d.opts.CheckpointBytes <= 0 {
		d.opts.CheckpointBytes = 8 << 20
	}
	if d.opts.CheckpointInterval <= 0 {
		d.opts.CheckpointInterval = time.Second
	}
	if d.opts.BackoffMin <= 0 {
		d.opts.BackoffMin = time.Second
	}
	if d.opts.BackoffMax < d.opts.BackoffMin {
		d.opts.BackoffMax = max(5*time.Minute, d.opts.BackoffMin)
	}
	d.limiter = NewLimiter(opts.RateLimit, 0)
	return d
}

var (
	errWindowClosed  = errors.New("download window closed")
	errStalled       = errors.New("transfer stalled")
	errHeaderTimeout = errors.New("no response headers in time")
)

// Fetch downloads rawURL into path until path holds exactly size bytes,
// fsynced. Transient failures (a dropped link, a timeout, a stall, a 5xx,
// a truncated body, a server that ignored or mangled a Range) are retried
// with doubling backoff and jitter, resuming from the last checkpoint;
// Fetch returns only when done, when ctx ends, or with a PermanentError
// (404, a size mismatch, no space). It does not check the sha256: that is
// the verifying step's, over the whole file.
func (d *Downloader) Fetch(ctx context.Context, rawURL string, size int64, path string) error {
	if size <= 0 {
		return permanentf("fetch %s: size %d: %w", redact(rawURL), size, ErrSizeMismatch)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return permanentf("fetch %s: %w", redact(rawURL), err)
	}
	if err := checkTransport(u, d.opts.AllowHTTP); err != nil {
		return permanent(err)
	}
	bo := newBackoff(d.opts.BackoffMin, d.opts.BackoffMax)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := d.waitWindow(ctx); err != nil {
			return err
		}
		got, err := d.attempt(ctx, rawURL, size, path)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, errCrashed) || IsPermanent(err):
			return err
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, errWindowClosed):
			d.log.Info("download paused: window closed", "path", path)
			continue
		}
		if got > 0 {
			bo.reset()
		}
		wait := bo.next()
		d.log.Warn("download attempt failed; retrying", "url", redact(rawURL), "err", err, "received", got, "retry_in", wait)
		if d.opts.Retry != nil {
			d.opts.Retry(err, wait)
		}
		if err := sleep(ctx, d.clock, wait); err != nil {
			return err
		}
	}
}

func (d *Downloader) waitWindow(ctx context.Context) error {
	for {
		now := d.clock.Now()
		if d.window.Allowed(now) {
			return nil
		}
		next := d.window.Next(now)
		d.log.Info("download waiting for its window", "opens", next)
		if err := sleep(ctx, d.clock, max(next.Sub(now), time.Second)); err != nil {
			return err
		}
	}
}

// progressRecord is PATH.progress: how much of PATH is known good, and the
// validators of the remote file it came from.
type progressRecord struct {
	Format       int    `json:"format"`
	URL          string `json:"url"`
	Size         int64  `json:"size"`
	Offset       int64  `json:"offset"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

func progressPath(path string) string { return path + ".progress" }

// loadProgress returns the record for path, or a fresh one. A record for
// another size starts over; one for another URL keeps its offset (the
// file is named by its sha256, so a mirror's bytes are the same bytes)
// but not the other server's validators.
func (d *Downloader) loadProgress(path, rawURL string, size int64) progressRecord {
	fresh := progressRecord{Format: 1, URL: rawURL, Size: size}
	data, err := os.ReadFile(progressPath(path))
	if err != nil {
		return fresh
	}
	var rec progressRecord
	if err := json.Unmarshal(data, &rec); err != nil || rec.Format != 1 || rec.Size != size || rec.Offset < 0 || rec.Offset > size {
		d.log.Warn("download progress record unusable; starting over", "path", path)
		return fresh
	}
	if rec.URL != rawURL {
		rec.URL, rec.ETag, rec.LastModified = rawURL, "", ""
	}
	return rec
}

// saveProgress replaces PATH.progress atomically: a power cut leaves the
// old record or the new one.
func saveProgress(path string, rec progressRecord) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return writeFile(progressPath(path), data, 0o600)
}

// attempt makes one request and copies what arrives. It returns the bytes
// received and nil once path holds size bytes.
func (d *Downloader) attempt(ctx context.Context, rawURL string, size int64, path string) (int64, error) {
	rec := d.loadProgress(path, rawURL, size)
	f, err := d.openPartial(path, &rec)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if rec.Offset == size {
		return 0, d.complete(f, path, rec)
	}
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	resp, err := d.get(actx, cancel, rawURL, rec)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()

	restart, err := d.checkResponse(resp, &rec, rawURL)
	if err != nil {
		return 0, err
	}
	if restart != "" || (resp.StatusCode == http.StatusOK && rec.Offset > 0) {
		// A 200 to a range request is the whole file (the server ignored
		// the Range, or If-Range found the file changed): start over and
		// take it. Anything else that calls for a restart, restarts.
		if err := d.restart(f, path, &rec); err != nil {
			return 0, err
		}
		if restart != "" {
			return 0, fmt.Errorf("GET %s: %s; restarting from byte 0", redact(rawURL), restart)
		}
		d.log.Info("server sent the whole file; restarting from byte 0", "url", redact(rawURL))
	}
	rec.ETag, rec.LastModified = resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	if _, err := f.Seek(rec.Offset, io.SeekStart); err != nil {
		return 0, err
	}
	return d.copyBody(actx, cancel, resp.Body, f, path, &rec)
}

// openPartial opens the partial file and cuts it back to the last
// checkpoint: bytes past it were never fsynced and may be anything.
func (d *Downloader) openPartial(path string, rec *progressRecord) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, classifyFSError(fmt.Errorf("open partial file: %w", err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if fi.Size() < rec.Offset {
		d.log.Warn("partial file shorter than its progress record; starting over", "path", path)
		rec.Offset, rec.ETag, rec.LastModified = 0, "", ""
	}
	if err := f.Truncate(rec.Offset); err != nil {
		f.Close()
		return nil, classifyFSError(fmt.Errorf("truncate partial file: %w", err))
	}
	return f, nil
}

// get requests the file from rec.Offset, giving up when no response
// headers arrive within HeaderTimeout.
func (d *Downloader) get(ctx context.Context, cancel context.CancelCauseFunc, rawURL string, rec progressRecord) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, permanentf("request %s: %w", redact(rawURL), err)
	}
	if rec.Offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", rec.Offset))
		// If-Range: if the file changed, send all of it (200) rather than
		// a range of the new file glued to the old one's head.
		if rec.ETag != "" && !strings.HasPrefix(rec.ETag, "W/") {
			req.Header.Set("If-Range", rec.ETag)
		} else if rec.LastModified != "" {
			req.Header.Set("If-Range", rec.LastModified)
		}
	}
	headers := time.AfterFunc(d.opts.HeaderTimeout, func() { cancel(errHeaderTimeout) })
	resp, err := d.client.Do(req)
	headers.Stop()
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, errHeaderTimeout) {
			return nil, fmt.Errorf("GET %s: %w after %v", redact(rawURL), errHeaderTimeout, d.opts.HeaderTimeout)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, ErrRedirect) || errors.Is(err, ErrInsecureURL) {
			return nil, permanentf("GET %s: %w", redact(rawURL), err)
		}
		return nil, fmt.Errorf("GET %s: %w", redact(rawURL), err)
	}
	return resp, nil
}

// checkRedirect follows a redirect only to the same host name, never
// from https to http, and (without AllowHTTP) never to plain http off
// loopback: the manifest names where an artifact comes from, and a
// server must not send the device elsewhere.
func (d *Downloader) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return fmt.Errorf("%w: more than 10 redirects", ErrRedirect)
	}
	from, to := via[0].URL, req.URL
	if !strings.EqualFold(from.Hostname(), to.Hostname()) {
		return fmt.Errorf("%w: %s redirects to %s", ErrRedirect, from.Hostname(), redact(to.String()))
	}
	if from.Scheme == "https" && to.Scheme != "https" {
		return fmt.Errorf("%w: https redirects to %s", ErrRedirect, redact(to.String()))
	}
	return checkTransport(to, d.opts.AllowHTTP)
}

// checkResponse classifies a response to a request from rec.Offset: nil
// to go on with the body, a reason to start over from byte 0 (a mangled
// or changed range), or an error (permanent, or transient to retry).
func (d *Downloader) checkResponse(resp *http.Response, rec *progressRecord, rawURL string) (restart string, err error) {
	sizeMismatch := func(total int64) error {
		return permanentf("GET %s: the server's file is %d bytes, the manifest says %d: %w", redact(rawURL), total, rec.Size, ErrSizeMismatch)
	}
	etag := resp.Header.Get("ETag")
	switch code := resp.StatusCode; {
	case code == http.StatusPartialContent:
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		switch {
		case !ok:
			return fmt.Sprintf("206 with a bad Content-Range %q", resp.Header.Get("Content-Range")), nil
		case total >= 0 && total != rec.Size:
			return "", sizeMismatch(total)
		case start != rec.Offset:
			return fmt.Sprintf("asked for bytes from %d, the server sent from %d", rec.Offset, start), nil
		case rec.ETag != "" && etag != "" && etag != rec.ETag:
			return fmt.Sprintf("the remote file changed (ETag %s, was %s)", etag, rec.ETag), nil
		}
		return "", nil
	case code == http.StatusOK:
		if resp.ContentLength >= 0 && resp.ContentLength != rec.Size {
			return "", sizeMismatch(resp.ContentLength)
		}
		return "", nil
	case code == http.StatusRequestedRangeNotSatisfiable:
		if _, total, ok := parseContentRange(resp.Header.Get("Content-Range")); ok && total >= 0 && total != rec.Size {
			return "", sizeMismatch(total)
		}
		return "416 range not satisfiable", nil
	case code == http.StatusNotFound || code == http.StatusGone:
		return "", permanentf("GET %s: HTTP %d: %w", redact(rawURL), code, ErrRemoteNotFound)
	case code == http.StatusRequestTimeout || code == http.StatusTooEarly || code == http.StatusTooManyRequests || code >= 500:
		return "", fmt.Errorf("GET %s: HTTP %d", redact(rawURL), code)
	case code >= 400:
		return "", permanentf("GET %s: HTTP %d: %w", redact(rawURL), code, ErrHTTPStatus)
	}
	return "", fmt.Errorf("GET %s: unexpected HTTP %d", redact(rawURL), resp.StatusCode)
}

// copyBody copies the response into f from rec.Offset, checkpointing as it
// goes, until size bytes are on disk.
func (d *Downloader) copyBody(ctx context.Context, cancel context.CancelCauseFunc, body io.Reader, f *os.File, path string, rec *progressRecord) (int64, error) {
	var got int64
	saved, savedAt := rec.Offset, d.clock.Now()
	checkpoint := func() error {
		if rec.Offset == saved {
			return nil
		}
		if err := f.Sync(); err != nil {
			return classifyFSError(fmt.Errorf("sync partial file: %w", err))
		}
		if err := saveProgress(path, *rec); err != nil {
			return classifyFSError(fmt.Errorf("save download progress: %w", err))
		}
		saved, savedAt = rec.Offset, d.clock.Now()
		return d.point("download-checkpoint")
	}
	// fail keeps what arrived before returning a transient error.
	fail := func(err error) (int64, error) {
		if cerr := checkpoint(); cerr != nil {
			return got, cerr
		}
		return got, err
	}
	// The stall timer runs only while waiting for the network, not while
	// an fsync or the rate limiter holds the loop.
	stall := time.AfterFunc(time.Hour, func() { cancel(errStalled) })
	stall.Stop()
	defer stall.Stop()
	buf := make([]byte, min(32<<10, max(d.limiter.Burst(), 1<<10)))
	for rec.Offset < rec.Size {
		if !d.window.Allowed(d.clock.Now()) {
			return fail(errWindowClosed)
		}
		stall.Reset(d.opts.StallTimeout)
		n, rerr := body.Read(buf[:min(int64(len(buf)), rec.Size-rec.Offset)])
		stall.Stop()
		if n > 0 {
			if _, err := f.Write(buf[:n]); err != nil {
				return got, classifyFSError(fmt.Errorf("write partial file: %w", err))
			}
			rec.Offset += int64(n)
			got += int64(n)
			if d.opts.Progress != nil {
				d.opts.Progress(rec.Offset, rec.Size)
			}
			if wait := d.limiter.Reserve(d.clock.Now(), n); wait > 0 {
				if err := sleep(ctx, d.clock, wait); err != nil {
					return fail(err)
				}
			}
			if rec.Offset-saved >= d.opts.CheckpointBytes || d.clock.Now().Sub(savedAt) >= d.opts.CheckpointInterval {
				if err := checkpoint(); err != nil {
					return got, err
				}
			}
		}
		switch {
		case rerr == io.EOF && rec.Offset < rec.Size:
			return fail(fmt.Errorf("body ended at byte %d of %d: %w", rec.Offset, rec.Size, io.ErrUnexpectedEOF))
		case rerr != nil && rerr != io.EOF:
			if cause := context.Cause(ctx); errors.Is(cause, errStalled) {
				return fail(fmt.Errorf("%w: no data for %v at byte %d of %d", errStalled, d.opts.StallTimeout, rec.Offset, rec.Size))
			}
			return fail(fmt.Errorf("read at byte %d of %d: %w", rec.Offset, rec.Size, rerr))
		}
	}
	// A body longer than the manifest's size is another file.
	if n, _ := io.ReadFull(body, buf[:1]); n > 0 {
		return got, permanentf("the server sent more than the manifest's %d bytes: %w", rec.Size, ErrSizeMismatch)
	}
	return got, d.complete(f, path, *rec)
}

// complete fsyncs a whole file and records it as done.
func (d *Downloader) complete(f *os.File, path string, rec progressRecord) error {
	if err := f.Sync(); err != nil {
		return classifyFSError(fmt.Errorf("sync partial file: %w", err))
	}
	rec.Offset = rec.Size
	if err := saveProgress(path, rec); err != nil {
		return classifyFSError(fmt.Errorf("save download progress: %w", err))
	}
	return d.point("download-complete")
}

// restart empties the partial file and its record.
func (d *Downloader) restart(f *os.File, path string, rec *progressRecord) error {
	rec.Offset, rec.ETag, rec.LastModified = 0, "", ""
	if err := f.Truncate(0); err != nil {
		return classifyFSError(fmt.Errorf("truncate partial file: %w", err))
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := saveProgress(path, *rec); err != nil {
		return classifyFSError(fmt.Errorf("save download progress: %w", err))
	}
	return d.point("download-restart")
}

func (d *Downloader) point(name string) error {
	if d.hook == nil {
		return nil
	}
	return d.hook(name)
}

// parseContentRange parses "bytes START-END/TOTAL" and "bytes */TOTAL";
// total is -1 for "*".
func parseContentRange(s string) (start, total int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	span, size, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	total = -1
	if size != "*" {
		n, err := strconv.ParseInt(size, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, false
		}
		total = n
	}
	if span == "*" {
		return -1, total, true
	}
	from, to, found := strings.Cut(span, "-")
	if !found {
		return 0, 0, false
	}
	a, err1 := strconv.ParseInt(from, 10, 64)
	b, err2 := strconv.ParseInt(to, 10, 64)
	if err1 != nil || err2 != nil || a < 0 || b < a {
		return 0, 0, false
	}
	return a, total, true
}

// classifyFSError marks a full disk as permanent: retrying will not make
// room.
func classifyFSError(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return permanentf("%w: %w", ErrNoSpace, err)
	}
	return err
}

// redact drops credentials and the query (which may hold a presigned
// token) from a URL before it goes into a log or a report.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	return u.String()
}

// writeFile replaces path with data durably (see package durable).
func writeFile(path string, data []byte, perm fs.FileMode) error {
	return durable.WriteFile(path, perm, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}
