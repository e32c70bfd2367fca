package fleet

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// testKey returns a deterministic key pair, so goldens stay put.
func testKey(n byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{n}, ed25519.SeedSize))
}

func pub(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// modelArtifact describes content served at url as a model.
func modelArtifact(name, url string, content []byte) Artifact {
	return Artifact{Kind: KindModel, Name: name, URL: url, SHA256: sha256hex(content), Size: int64(len(content)), License: "apache-2.0"}
}

// signRaw signs manifest JSON as it is (canonicalized when it can be),
// for tests of what a verifier does with manifests Sign would refuse.
func signRaw(t testing.TB, manifest string, keys ...ed25519.PrivateKey) []byte {
	t.Helper()
	canon, err := Canonicalize([]byte(manifest))
	if err != nil {
		canon = []byte(manifest)
	}
	var sigs []string
	for _, k := range keys {
		sig := ed25519.Sign(k, signedMessage(canon))
		sigs = append(sigs, fmt.Sprintf(`{"key_id":%q,"signature":%q}`, KeyID(pub(k)), base64.StdEncoding.EncodeToString(sig)))
	}
	return fmt.Appendf(nil, `{"format":2,"manifest":%s,"signatures":[%s]}`, canon, joinComma(sigs))
}

func joinComma(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(x)
	}
	return b.String()
}

func mustSign(t testing.TB, m *Manifest, keys ...ed25519.PrivateKey) []byte {
	t.Helper()
	env, err := Sign(m, keys...)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return env
}

// instantClock is a fake clock whose After returns at once, advancing the
// fake time by d: sleeps cost nothing and the time they would have taken
// adds up exactly.
type instantClock struct {
	mu  sync.Mutex
	now time.Time
}

func newInstantClock() *instantClock {
	return &instantClock{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *instantClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *instantClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.now = c.now.Add(d)
	t := c.now
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- t
	return ch
}

// serveMode is how the artifact server answers one request.
type serveMode struct {
	status      int   // answer with this status and no body (0: serve)
	cutAfter    int64 // abort the connection after this many body bytes (0: never)
	stallAfter  int64 // send this many bytes, then nothing until the client gives up (0: never)
	ignoreRange bool  // answer 200 with the whole file whatever the request
	shortBody   int64 // send only this many bytes, without Content-Length, and end cleanly (0: all)
	headerDelay time.Duration
}

// artServer is a static file server with faults on demand.
type artServer struct {
	*httptest.Server
	mu       sync.Mutex
	files    map[string]artFile
	plan     func(n int, r *http.Request) serveMode
	requests []servedRequest
	// redirects maps a path to a Location answered with 302.
	redirects map[string]string
}

type artFile struct {
	content []byte
	etag    string // empty: none
}

type servedRequest struct {
	Path, Range, IfRange string
}

func newArtServer(t testing.TB) *artServer {
	s := &artServer{files: map[string]artFile{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// put serves content at path with an ETag derived from it.
func (s *artServer) put(path string, content []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[path] = artFile{content: content, etag: `"` + sha256hex(content)[:16] + `"`}
	return s.URL + path
}

func (s *artServer) setPlan(plan func(n int, r *http.Request) serveMode) {
	s.mu.Lock()
	s.plan = plan
	s.mu.Unlock()
}

func (s *artServer) log() []servedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]servedRequest(nil), s.requests...)
}

func (s *artServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	n := len(s.requests)
	s.requests = append(s.requests, servedRequest{r.URL.Path, r.Header.Get("Range"), r.Header.Get("If-Range")})
	f, ok := s.files[r.URL.Path]
	loc, moved := s.redirects[r.URL.Path]
	var mode serveMode
	if s.plan != nil {
		mode = s.plan(n, r)
	}
	s.mu.Unlock()
	if moved {
		http.Redirect(w, r, loc, http.StatusFound)
		return
	}
	if mode.headerDelay > 0 {
		select {
		case <-time.After(mode.headerDelay):
		case <-r.Context().Done():
			return
		}
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	if mode.status != 0 {
		if mode.status == http.StatusRequestedRangeNotSatisfiable {
			w.Header().Set("Content-Range", "bytes */"+strconv.Itoa(len(f.content)))
		}
		w.WriteHeader(mode.status)
		return
	}
	if f.etag != "" {
		w.Header().Set("ETag", f.etag)
	}
	var out io.Writer = w
	switch {
	case mode.cutAfter > 0:
		out = &cutWriter{w: w, left: mode.cutAfter}
	case mode.stallAfter > 0:
		out = &stallWriter{w: w, left: mode.stallAfter, done: r.Context().Done()}
	}
	if mode.shortBody > 0 {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush() // chunked: no Content-Length
		w.Write(f.content[:mode.shortBody])
		return
	}
	if mode.ignoreRange {
		w.Header().Set("Content-Length", strconv.Itoa(len(f.content)))
		w.WriteHeader(http.StatusOK)
		out.Write(f.content)
		return
	}
	http.ServeContent(writerWith{w, out}, r, "", time.Time{}, bytes.NewReader(f.content))
}

// writerWith sends the body through out and the rest through the
// ResponseWriter.
type writerWith struct {
	http.ResponseWriter
	out io.Writer
}

func (w writerWith) Write(b []byte) (int, error) { return w.out.Write(b) }

// cutWriter drops the connection after left bytes, as a link that fails
// mid-transfer does.
type cutWriter struct {
	w    http.ResponseWriter
	left int64
}

func (c *cutWriter) Write(b []byte) (int, error) {
	if int64(len(b)) < c.left {
		c.left -= int64(len(b))
		return c.w.Write(b)
	}
	c.w.Write(b[:c.left])
	c.w.(http.Flusher).Flush()
	panic(http.ErrAbortHandler)
}

// stallWriter stops sending after left bytes and holds the connection
// open until the client gives up.
type stallWriter struct {
	w    http.ResponseWriter
	left int64
	done <-chan struct{}
}

func (s *stallWriter) Write(b []byte) (int, error) {
	if int64(len(b)) < s.left {
		s.left -= int64(len(b))
		return s.w.Write(b)
	}
	s.w.Write(b[:s.left])
	s.w.(http.Flusher).Flush()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
	}
	panic(http.ErrAbortHandler)
}

// eventually polls cond until it holds or a deadline passes.
func eventually(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var errInjected = errors.New("injected failure")

// redirect makes path answer 302 to location.
func (s *artServer) redirect(path, location string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.redirects == nil {
		s.redirects = map[string]string{}
	}
	s.redirects[path] = location
	return s.URL + path
}
