package mqtt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"

	"github.com/ember-edge/ember/internal/testkit"
	"github.com/ember-edge/ember/internal/tlsconf/tlstest"
)

// TestTLSClientCertificatesAndLogins: on a TLS listener that verifies
// client certificates, a client needs a certificate from the CA and a
// login, and its ACL applies as on plain TCP.
func TestTLSClientCertificatesAndLogins(t *testing.T) {
	ca := tlstest.NewCA(t, t.TempDir())
	cert, key := ca.Issue(t, "broker")
	clientCert, clientKey := ca.Issue(t, "plc", x509.ExtKeyUsageClientAuth)
	other := tlstest.NewCA(t, t.TempDir())
	strangerCert, strangerKey := other.Issue(t, "stranger", x509.ExtKeyUsageClientAuth)
	port, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	tlsAddr := fmt.Sprintf("127.0.0.1:%d", port)
	tb := startBrokerWith(t, fmt.Sprintf("%s, tls: {listen: %q, cert: %q, key: %q, client_ca: %q}", usersYAML(t), tlsAddr, cert, key, ca.File), "")
	dial := func(certFile, keyFile string) (*tls.Conn, error) {
		cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
		if certFile != "" {
			kp, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{kp}
		}
		conn, err := tls.Dial("tcp", tlsAddr, cfg)
		if err == nil {
			err = conn.Handshake()
		}
		if err == nil {
			// TLS 1.3 reports a refused client certificate on the first read.
			conn.Write(connectPacket(t, 5, "probe", []byte("plc"), []byte("plc-pw")))
			_, err = conn.Read(make([]byte, 1))
		}
		return conn, err
	}
	if _, err := dial("", ""); err == nil {
		t.Fatal("a client without a certificate was let in")
	}
	if _, err := dial(strangerCert, strangerKey); err == nil {
		t.Fatal("a certificate from another CA was let in")
	}
	if conn, err := dial(clientCert, clientKey); err != nil {
		t.Fatalf("a good certificate: %v", err)
	} else {
		conn.Close()
	}
	for _, tt := range []struct {
		user, pass string
		ok         bool
	}{{"plc", "plc-pw", true}, {"plc", "wrong", false}, {"", "", false}} {
		kp, _ := tls.LoadX509KeyPair(clientCert, clientKey)
		conn, err := tls.Dial("tcp", tlsAddr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{kp}})
		if err != nil {
			t.Fatal(err)
		}
		var user, pass []byte
		if tt.user != "" {
			user, pass = []byte(tt.user), []byte(tt.pass)
		}
		conn.Write(connectPacket(t, 5, "plc-tls", user, pass))
		ack := make([]byte, 4)
		if _, err := conn.Read(ack); err != nil {
			t.Fatal(err)
		}
		if (ack[3] == 0) != tt.ok {
			t.Errorf("login %q over TLS: CONNACK %#x", tt.user, ack[3])
		}
		conn.Close()
	}
	// The ACL holds over TLS as over TCP.
	kp, _ := tls.LoadX509KeyPair(clientCert, clientKey)
	conn, err := tls.Dial("tcp", tlsAddr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{kp}})
	if err != nil {
		t.Fatal(err)
	}
	c := login5(t, conn, "plc-acl", "plc", "plc-pw", make(chan string, 1))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for topic, allowed := range map[string]bool{"plant/line3/press4/reading": true, "plant/line3/press4/cmd": false} {
		res, err := c.Publish(ctx, &paho5.Publish{Topic: topic, QoS: 1, Payload: []byte(`{"n":1}`)})
		if res == nil {
			t.Fatalf("no PUBACK: %v", err)
		}
		if (res.ReasonCode < 0x80) != allowed {
			t.Errorf("publish %s over TLS: %#x", topic, res.ReasonCode)
		}
	}
	_ = tb
}
