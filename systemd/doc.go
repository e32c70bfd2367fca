// Package systemd holds no code: its directory carries emberd's systemd
// integration — the service unit, sysusers.d and tmpfiles.d entries, the
// default config, the Jetson GPU drop-in and the installer `make install`
// runs — and this package's tests, which check those files against the
// real emberd and a real systemd. README.md says what is verified and how.
package systemd
