package testkit

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Mosquitto is a real mosquitto broker started for one test.
type Mosquitto struct {
	// Addr is the broker's host:port on loopback.
	Addr string

	bin, conf string
	mu        sync.Mutex
	cmd       *exec.Cmd
	log       *lockedBuffer
	exited    chan error
}

// URL returns the broker's address as emberd's mqtt.external.url takes it.
func (m *Mosquitto) URL() string { return "tcp://" + m.Addr }

// PID returns the broker's process id (to read its CPU time, say).
func (m *Mosquitto) PID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cmd.Process.Pid
}

// Restart kills the broker (SIGKILL: it keeps nothing, having no
// persistence, so every session and queued message is gone) and starts
// it again on the same address.
func (m *Mosquitto) Restart(t testing.TB) {
	t.Helper()
	m.Stop()
	if err := m.start(); err != nil {
		t.Fatalf("restart mosquitto: %v", err)
	}
}

// Stop kills the broker; Restart starts it again.
func (m *Mosquitto) Stop() {
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.cmd = nil
	m.mu.Unlock()
	if cmd != nil {
		cmd.Process.Kill()
		<-exited
	}
}

// start runs mosquitto with its config and waits until it accepts
// connections.
func (m *Mosquitto) start() error {
	cmd := exec.Command(m.bin, "-c", m.conf)
	cmd.Stdout, cmd.Stderr = m.log, m.log
	exited := make(chan error, 1)
	var err error
	for range 50 { // the old process's port may linger a moment
		if err = cmd.Start(); err != nil {
			return fmt.Errorf("start %s: %w", m.bin, err)
		}
		go func() { exited <- cmd.Wait() }()
		if err = m.waitUp(exited); err == nil {
			m.mu.Lock()
			m.cmd, m.exited = cmd, exited
			m.mu.Unlock()
			return nil
		}
		cmd = exec.Command(m.bin, "-c", m.conf)
		cmd.Stdout, cmd.Stderr = m.log, m.log
		exited = make(chan error, 1)
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

func (m *Mosquitto) waitUp(exited chan error) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", m.Addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("mosquitto exited at start (%v):\n%s", err, m.log)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mosquitto did not accept connections on %s within 10s:\n%s", m.Addr, m.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Log returns what mosquitto has written so far.
func (m *Mosquitto) Log() string { return m.log.String() }

// mosquittoBinary finds mosquitto on PATH or where Debian installs it
// (/usr/sbin, which is not on every user's PATH).
func mosquittoBinary() (string, bool) {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, true
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, true
		}
	}
	return "", false
}

// StartMosquitto starts a mosquitto on a free loopback port with a config
// of its own (anonymous clients, no persistence, room for many in-flight
// and queued QoS 1 messages, TCP_NODELAY so small acknowledgements are
// not held back by Nagle's algorithm), waits until it accepts
// connections, and kills it when the test ends. A machine without
// mosquitto fails the test with the command that installs it: the tests
// that need a real broker never skip.
func StartMosquitto(t testing.TB) *Mosquitto {
	t.Helper()
	return StartMosquittoWith(t, MosquittoOptions{})
}

// MosquittoOptions make a mosquitto with access control.
type MosquittoOptions struct {
	// Users maps usernames to passwords. When set, anonymous clients are
	// refused and these log in (mosquitto_passwd hashes them).
	Users map[string]string
	// ACL is the text of an acl_file (mosquitto's "user", "topic" and
	// "pattern" lines); empty means none.
	ACL string
}

// StartMosquittoWith is StartMosquitto with users and an ACL.
func StartMosquittoWith(t testing.TB, o MosquittoOptions) *Mosquitto {
	t.Helper()
	bin, ok := MosquittoInstalled()
	if !ok {
		t.Fatal("mosquitto is not installed; these tests need a real broker: install mosquitto: apt-get install mosquitto")
	}
	var lastErr error
	for range 5 { // a free port can be taken between choosing and binding it
		m, err := startMosquitto(t, bin, o)
		if err == nil {
			return m
		}
		lastErr = err
	}
	t.Fatalf("start mosquitto: %v", lastErr)
	return nil
}

// MosquittoInstalled returns the mosquitto binary, and false when there
// is none.
func MosquittoInstalled() (string, bool) { return mosquittoBinary() }

func startMosquitto(t testing.TB, bin string, o MosquittoOptions) (*Mosquitto, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	dir := t.TempDir()
	access, err := mosquittoAccess(dir, o)
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`# written by internal/testkit for one test
listener %d 127.0.0.1
%spersistence false
max_inflight_messages 1000
max_queued_messages 100000
set_tcp_nodelay true
log_dest stderr
log_type error
log_type warning
`, port, access)
	path := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	m := &Mosquitto{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), log: &lockedBuffer{}, bin: bin, conf: path}
	cmd := exec.Command(bin, "-c", path)
	cmd.Stdout, cmd.Stderr = m.log, m.log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := m.waitUp(exited); err != nil {
		cmd.Process.Kill()
		return nil, err
	}
	m.cmd, m.exited = cmd, exited
	t.Cleanup(func() {
		m.Stop()
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", m.log)
		}
	})
	return m, nil
}

// mosquittoAccess writes the password and ACL files of o into dir and
// returns the config lines naming them.
func mosquittoAccess(dir string, o MosquittoOptions) (string, error) {
	conf := "allow_anonymous true\n"
	if len(o.Users) > 0 {
		pw := filepath.Join(dir, "passwd")
		if err := os.WriteFile(pw, nil, 0o600); err != nil {
			return "", err
		}
		for u, p := range o.Users {
			if out, err := exec.Command("mosquitto_passwd", "-b", pw, u, p).CombinedOutput(); err != nil {
				return "", fmt.Errorf("mosquitto_passwd (apt-get install mosquitto-clients or mosquitto): %v: %s", err, out)
			}
		}
		conf = "allow_anonymous false\npassword_file " + pw + "\n"
	}
	if o.ACL != "" {
		acl := filepath.Join(dir, "acl")
		if err := os.WriteFile(acl, []byte(o.ACL), 0o600); err != nil {
			return "", err
		}
		conf += "acl_file " + acl + "\n"
	}
	if (len(o.Users) > 0 || o.ACL != "") && os.Geteuid() == 0 {
		// As root, mosquitto becomes user "mosquitto" before reading
		// these files, which that user cannot open in a test's dir.
		conf += "user root\n"
	}
	return conf, nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lockedBuffer is a bytes.Buffer a process writes while a test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
