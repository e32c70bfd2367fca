package main

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ember-edge/ember/internal/tlsconf/tlstest"
)

// freePort returns a TCP address on loopback that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestTokensEndToEnd: an admin on the socket creates a token, a client
// uses it over TCP with TLS, asks who it is, is refused what its role
// does not allow, and is refused altogether once the token is revoked.
func TestTokensEndToEnd(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir)
	cert, key := ca.Issue(t, "server")
	addr := freePort(t)
	cfgPath := writeConfig(t, dir, "")
	cfg, _ := os.ReadFile(cfgPath)
	grpcLine := "grpc: {socket: " + dir + "/ember.sock}"
	cfg = bytes.Replace(cfg, []byte(grpcLine), []byte("grpc: {socket: "+dir+"/ember.sock, tcp: \""+addr+"\", tls: {cert: "+cert+", key: "+key+"}}"), 1)
	os.WriteFile(cfgPath, cfg, 0o644)
	d := startDaemon(t, cfgPath)

	tcp := func(env []string, args ...string) (string, string, int) {
		cmd := exec.Command(filepath.Join(binDir, "emberctl"), append([]string{"--addr", addr, "--ca", ca.File}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), exitCode(err)
	}

	out, stderr, err := d.ctl(t, "token", "create", "line3", "--role", "technician", "--expires", "720h")
	if err != nil {
		t.Fatalf("token create: %v\n%s", err, stderr)
	}
	tok := strings.TrimSuffix(out, "\n")
	if !strings.HasPrefix(tok, "ember_") || strings.ContainsAny(tok, " \n\t") {
		t.Fatalf("token create printed more than the token: %q", out)
	}

	out, stderr, code := tcp(nil, "--token", tok, "whoami", "-o", "json")
	var me struct{ Kind, Role, Token_name string }
	if code != 0 || json.Unmarshal([]byte(out), &me) != nil || me.Kind != "token" || me.Role != "technician" || me.Token_name != "line3" {
		t.Fatalf("whoami with --token: exit %d %q %s", code, out, stderr)
	}
	if out, _, code := tcp([]string{"EMBER_TOKEN=" + tok}, "whoami"); code != 0 || !strings.Contains(out, "token line3") {
		t.Fatalf("whoami with $EMBER_TOKEN: exit %d\n%s", code, out)
	}
	_, stderr, code = tcp(nil, "--token", tok, "models", "unload", "tiny")
	if code == 0 || !strings.Contains(stderr, "PERMISSION_DENIED") || !strings.Contains(stderr, "models.unload requires role operator") {
		t.Fatalf("technician unloading: exit %d\n%s", code, stderr)
	}
	if _, stderr, code := tcp(nil, "status"); code == 0 || !strings.Contains(stderr, "UNAUTHENTICATED") {
		t.Fatalf("no token over TCP: exit %d\n%s", code, stderr)
	}
	if out, _, err := d.ctl(t, "token", "ls"); err != nil || !strings.Contains(out, "line3") || !strings.Contains(out, "active") {
		t.Fatalf("token ls: %v\n%s", err, out)
	}
	if _, stderr, err := d.ctl(t, "token", "revoke", "line3"); err != nil {
		t.Fatalf("revoke: %v\n%s", err, stderr)
	}
	_, stderr, code = tcp(nil, "--token", tok, "whoami")
	if code == 0 || !strings.Contains(stderr, "UNAUTHENTICATED") || !strings.Contains(stderr, "token revoked") {
		t.Fatalf("revoked token: exit %d\n%s", code, stderr)
	}
	// On the socket root is admin.
	if out, _, err := d.ctl(t, "whoami"); err != nil || !strings.Contains(out, "admin") {
		t.Fatalf("whoami on the socket: %v\n%s", err, out)
	}
}

func TestPlainTCPNeedsAllowUnauthenticated(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, "")
	cfg, _ := os.ReadFile(cfgPath)
	cfg = bytes.Replace(cfg, []byte("grpc: {socket: "+dir+"/ember.sock}"),
		[]byte("grpc: {socket: "+dir+"/ember.sock, tcp: \"127.0.0.1:0\", insecure: true}"), 1)
	os.WriteFile(cfgPath, cfg, 0o644)
	out, err := exec.Command(filepath.Join(binDir, "emberd"), "check-config", "--config", cfgPath).CombinedOutput()
	if exitCode(err) == 0 || !strings.Contains(string(out), "allow_unauthenticated_tcp") {
		t.Fatalf("plain TCP without allow_unauthenticated_tcp: exit %d\n%s", exitCode(err), out)
	}
}
