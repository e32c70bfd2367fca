package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// MinVersion is the oldest protocol version any ember endpoint accepts.
// Cipher suites and curves are Go's defaults on purpose: they drop weak
// suites as Go learns of them and include the hybrid post-quantum key
// exchange, which a fixed list here would not.
const MinVersion = tls.VersionTLS12

// Keys names the config keys or flags the files came from, for errors.
// An empty field reads as the field's own name ("cert", "key", "ca").
type Keys struct {
	Cert, Key, CA string
}

// Server names the files of a TLS server.
type Server struct {
	// Cert and Key are the server's PEM certificate chain and private
	// key; both are required.
	Cert, Key string
	// ClientCA, when set, holds the PEM certificates that must have
	// signed every client's certificate: a client without one is refused.
	ClientCA string
	// Keys names the keys Cert, Key and ClientCA (as CA) came from.
	Keys Keys
}

// Client names the files of a TLS client. The zero Client verifies the
// server against the system's roots and presents no certificate.
type Client struct {
	// CA, when set, holds the PEM certificates the server's certificate
	// must chain to, in place of the system's roots.
	CA string
	// Cert and Key, when set, are the client's own certificate and key,
	// for servers that require one; they go together.
	Cert, Key string
	// ServerName, when set, is the name the server's certificate must
	// carry; empty takes it from the address dialled.
	ServerName string
	// Keys names the keys CA, Cert and Key came from.
	Keys Keys
}

// Config reads the server's files and returns its configuration.
func (s Server) Config() (*tls.Config, error) {
	k := s.Keys.orDefault()
	if s.Cert == "" || s.Key == "" {
		return nil, fmt.Errorf("%s and %s: %w", k.Cert, k.Key, ErrIncomplete)
	}
	cert, err := keyPair(s.Cert, s.Key, k)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{MinVersion: MinVersion, Certificates: []tls.Certificate{cert}}
	if s.ClientCA != "" {
		if tc.ClientCAs, err = pool(s.ClientCA, k.CA); err != nil {
			return nil, err
		}
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// Config reads the client's files and returns its configuration.
func (c Client) Config() (*tls.Config, error) {
	k := c.Keys.orDefault()
	tc := &tls.Config{MinVersion: MinVersion, ServerName: c.ServerName}
	if c.CA != "" {
		var err error
		if tc.RootCAs, err = pool(c.CA, k.CA); err != nil {
			return nil, err
		}
	}
	if (c.Cert == "") != (c.Key == "") {
		return nil, fmt.Errorf("%s and %s: %w", k.Cert, k.Key, ErrIncomplete)
	}
	if c.Cert != "" {
		cert, err := keyPair(c.Cert, c.Key, k)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func (k Keys) orDefault() Keys {
	if k.Cert == "" {
		k.Cert = "cert"
	}
	if k.Key == "" {
		k.Key = "key"
	}
	if k.CA == "" {
		k.CA = "ca"
	}
	return k
}

// keyPair reads a certificate and its key, each read on its own so that a
// missing or wrong file is blamed on the key that named it.
func keyPair(certFile, keyFile string, k Keys) (tls.Certificate, error) {
	certPEM, err := readCerts(certFile, k.Cert)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s: %w", k.Key, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s %s and %s %s: %w", k.Cert, certFile, k.Key, keyFile, err)
	}
	return cert, nil
}

// pool reads a CA file into a certificate pool.
func pool(file, key string) (*x509.CertPool, error) {
	b, err := readCerts(file, key)
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: %s: %w", key, file, ErrNoCertificate)
	}
	return p, nil
}

// readCerts reads a PEM file and checks that it holds a certificate,
// which tls.X509KeyPair and AppendCertsFromPEM would only say vaguely.
func readCerts(file, key string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("%s: %s: %w", key, file, ErrNoCertificate)
		}
		if block.Type == "CERTIFICATE" {
			return b, nil
		}
	}
}
