// Package tlsconf builds the *tls.Config values ember's servers and
// clients use from the certificate files a config key or flag names, so
// that the defaults (TLS 1.2 at least) and the wording of errors live in
// one place.
//
// The gRPC API and the embedded MQTT broker use Server; the external MQTT
// client, the uplink and emberctl use Client. Every error names the
// config key or flag the bad file came from, so the message says what to
// fix: "uplink.ca: /etc/ember/ca.pem: no PEM certificate in it".
package tlsconf
