package tlsconf_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ember-edge/ember/internal/tlsconf"
	"github.com/ember-edge/ember/internal/tlsconf/tlstest"
)

// files is one test CA with a server and a client certificate, plus a
// second, unrelated key and a file that is not PEM.
type files struct {
	ca                          *tlstest.CA
	serverCert, serverKey       string
	clientCert, clientKey       string
	otherKey, garbage, badBlock string
}

func newFiles(t *testing.T) files {
	t.Helper()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir)
	f := files{ca: ca}
	f.serverCert, f.serverKey = ca.Issue(t, "server", x509.ExtKeyUsageServerAuth)
	f.clientCert, f.clientKey = ca.Issue(t, "client", x509.ExtKeyUsageClientAuth)
	_, f.otherKey = ca.Issue(t, "other")
	f.garbage = filepath.Join(dir, "garbage.pem")
	os.WriteFile(f.garbage, []byte("not a certificate\n"), 0o644)
	f.badBlock = filepath.Join(dir, "bad-block.pem")
	os.WriteFile(f.badBlock, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o644)
	return f
}

var keys = tlsconf.Keys{Cert: "x.tls.cert", Key: "x.tls.key", CA: "x.tls.ca"}

func TestServer(t *testing.T) {
	f := newFiles(t)
	missing := filepath.Join(t.TempDir(), "nope.pem")
	tests := []struct {
		name    string
		s       tlsconf.Server
		wantErr []string // substrings of the error; nil means success
		is      error
	}{
		{"good", tlsconf.Server{Cert: f.serverCert, Key: f.serverKey}, nil, nil},
		{"good with client CA", tlsconf.Server{Cert: f.serverCert, Key: f.serverKey, ClientCA: f.ca.File}, nil, nil},
		{"no cert", tlsconf.Server{Key: f.serverKey}, []string{"x.tls.cert and x.tls.key"}, tlsconf.ErrIncomplete},
		{"missing cert", tlsconf.Server{Cert: missing, Key: f.serverKey}, []string{"x.tls.cert: ", missing}, fs.ErrNotExist},
		{"missing key", tlsconf.Server{Cert: f.serverCert, Key: missing}, []string{"x.tls.key: ", missing}, fs.ErrNotExist},
		{"key as cert", tlsconf.Server{Cert: f.serverKey, Key: f.serverKey}, []string{"x.tls.cert: " + f.serverKey}, tlsconf.ErrNoCertificate},
		{"not PEM cert", tlsconf.Server{Cert: f.garbage, Key: f.serverKey}, []string{"x.tls.cert: " + f.garbage}, tlsconf.ErrNoCertificate},
		{"mismatched key", tlsconf.Server{Cert: f.serverCert, Key: f.otherKey}, []string{"x.tls.cert " + f.serverCert + " and x.tls.key " + f.otherKey, "does not match"}, nil},
		{"missing client CA", tlsconf.Server{Cert: f.serverCert, Key: f.serverKey, ClientCA: missing}, []string{"x.tls.ca: "}, fs.ErrNotExist},
		{"client CA without certificates", tlsconf.Server{Cert: f.serverCert, Key: f.serverKey, ClientCA: f.serverKey}, []string{"x.tls.ca: " + f.serverKey}, tlsconf.ErrNoCertificate},
		{"client CA with a broken certificate", tlsconf.Server{Cert: f.serverCert, Key: f.serverKey, ClientCA: f.badBlock}, []string{"x.tls.ca: " + f.badBlock}, tlsconf.ErrNoCertificate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.s.Keys = keys
			tc, err := tt.s.Config()
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if tc.MinVersion != tls.VersionTLS12 || len(tc.Certificates) != 1 {
					t.Errorf("MinVersion %x, %d certificates", tc.MinVersion, len(tc.Certificates))
				}
				want := tls.NoClientCert
				if tt.s.ClientCA != "" {
					want = tls.RequireAndVerifyClientCert
				}
				if tc.ClientAuth != want || (tc.ClientCAs != nil) != (tt.s.ClientCA != "") {
					t.Errorf("ClientAuth %v, ClientCAs %v", tc.ClientAuth, tc.ClientCAs)
				}
				return
			}
			checkErr(t, err, tt.wantErr, tt.is)
		})
	}
}

func TestClient(t *testing.T) {
	f := newFiles(t)
	missing := filepath.Join(t.TempDir(), "nope.pem")
	tests := []struct {
		name    string
		c       tlsconf.Client
		wantErr []string
		is      error
	}{
		{"zero: system roots", tlsconf.Client{}, nil, nil},
		{"CA", tlsconf.Client{CA: f.ca.File, ServerName: "broker.local"}, nil, nil},
		{"CA and client certificate", tlsconf.Client{CA: f.ca.File, Cert: f.clientCert, Key: f.clientKey}, nil, nil},
		{"missing CA", tlsconf.Client{CA: missing}, []string{"x.tls.ca: ", missing}, fs.ErrNotExist},
		{"CA without certificates", tlsconf.Client{CA: f.garbage}, []string{"x.tls.ca: " + f.garbage}, tlsconf.ErrNoCertificate},
		{"cert without key", tlsconf.Client{Cert: f.clientCert}, []string{"x.tls.cert and x.tls.key"}, tlsconf.ErrIncomplete},
		{"key without cert", tlsconf.Client{Key: f.clientKey}, []string{"x.tls.cert and x.tls.key"}, tlsconf.ErrIncomplete},
		{"mismatched key", tlsconf.Client{Cert: f.clientCert, Key: f.serverKey}, []string{"x.tls.key " + f.serverKey, "does not match"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.Keys = keys
			tc, err := tt.c.Config()
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if tc.MinVersion != tls.VersionTLS12 || tc.ServerName != tt.c.ServerName ||
					(tc.RootCAs != nil) != (tt.c.CA != "") || len(tc.Certificates) != map[bool]int{true: 1}[tt.c.Cert != ""] {
					t.Errorf("config %+v from %+v", tc, tt.c)
				}
				return
			}
			checkErr(t, err, tt.wantErr, tt.is)
		})
	}
}

func TestDefaultKeyNames(t *testing.T) {
	_, err := tlsconf.Client{Cert: "c.pem"}.Config()
	if err == nil || !strings.HasPrefix(err.Error(), "cert and key: ") {
		t.Fatalf("error %v", err)
	}
}

func checkErr(t *testing.T, err error, want []string, is error) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	if is != nil && !errors.Is(err, is) {
		t.Errorf("error %q is not %v", err, is)
	}
}

// TestHandshake runs real handshakes: a server given a client CA refuses
// a client without a certificate and accepts one with a certificate the
// CA signed; a client given the CA trusts the server, one without does not.
func TestHandshake(t *testing.T) {
	f := newFiles(t)
	srv, err := tlsconf.Server{Cert: f.serverCert, Key: f.serverKey, ClientCA: f.ca.File}.Config()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		c    tlsconf.Client
		ok   bool
	}{
		{"client certificate", tlsconf.Client{CA: f.ca.File, Cert: f.clientCert, Key: f.clientKey}, true},
		{"no client certificate", tlsconf.Client{CA: f.ca.File}, false},
		{"server not trusted", tlsconf.Client{Cert: f.clientCert, Key: f.clientKey}, false},
		{"wrong server name", tlsconf.Client{CA: f.ca.File, Cert: f.clientCert, Key: f.clientKey, ServerName: "elsewhere"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cli, err := tt.c.Config()
			if err != nil {
				t.Fatal(err)
			}
			if cli.ServerName == "" {
				cli.ServerName = "localhost"
			}
			a, b := net.Pipe()
			srvErr := make(chan error, 1)
			go func() {
				s := tls.Server(a, srv)
				err := s.Handshake()
				if err == nil {
					// TLS 1.3 clients finish before the server has checked
					// their certificate; a read surfaces a refusal.
					_, err = s.Write([]byte("x"))
				}
				s.Close()
				srvErr <- err
			}()
			c := tls.Client(b, cli)
			err = c.Handshake()
			if err == nil {
				_, err = io.ReadFull(c, make([]byte, 1))
			}
			c.Close()
			sErr := <-srvErr
			if ok := err == nil && sErr == nil; ok != tt.ok {
				t.Errorf("handshake ok = %v, want %v (client: %v, server: %v)", ok, tt.ok, err, sErr)
			}
		})
	}
}
