package fleet

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Scope: what binds a signed manifest to one fleet, some devices and a
// period of time (FORMAT.md, "Scope").

// Timestamp is an instant, written in JSON and YAML as RFC 3339 text
// ("2026-04-01T00:00:00Z"). The zero Timestamp is absent.
type Timestamp struct{ time.Time }

// MarshalJSON writes the instant in UTC, RFC 3339, with a fraction only
// when it has one.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	return json.Marshal(t.UTC().Format(time.RFC3339Nano))
}

// UnmarshalJSON reads RFC 3339 text.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a time like \"2026-04-01T00:00:00Z\"")
	}
	v, err := parseTimestamp(s)
	if err != nil {
		return err
	}
	*t = Timestamp{v}
	return nil
}

func parseTimestamp(s string) (time.Time, error) {
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("want an RFC 3339 time like 2026-04-01T00:00:00Z, got %q", s)
	}
	return v, nil
}

// ClockSkew is how far ahead of a device's clock a manifest's not_before
// may be and still be valid: signing machines and devices disagree by
// seconds to minutes. not_after has no such allowance.
const ClockSkew = 5 * time.Minute

// maxDevices bounds a manifest's devices list.
const maxDevices = 4096

// CheckScope refuses a manifest that is not for device in fleet at now:
// another fleet or a devices list without device (ErrOutOfScope), before
// not_before less ClockSkew (ErrNotYetValid), after not_after
// (ErrExpired).
func (m *Manifest) CheckScope(fleet, device string, now time.Time) error {
	if m.Fleet != fleet {
		return fmt.Errorf("%w: signed for fleet %q, this device is in fleet %q", ErrOutOfScope, m.Fleet, fleet)
	}
	if len(m.Devices) > 0 && !slices.Contains(m.Devices, device) {
		return fmt.Errorf("%w: its devices list (%s) does not name %q", ErrOutOfScope, abbreviateList(m.Devices, 5), device)
	}
	if !m.NotBefore.IsZero() && now.Add(ClockSkew).Before(m.NotBefore.Time) {
		return fmt.Errorf("%w: not before %s, the device's clock says %s", ErrNotYetValid,
			m.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if now.After(m.NotAfter.Time) {
		return fmt.Errorf("%w: not after %s, the device's clock says %s", ErrExpired,
			m.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

func abbreviateList(s []string, n int) string {
	if len(s) <= n {
		return strings.Join(s, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(s[:n], ", "), len(s)-n)
}

// validateScope checks the scope fields' rules (FORMAT.md).
func (m *Manifest) validateScope(bad badFunc) {
	switch {
	case m.Fleet == "":
		bad("fleet", "missing: the fleet the manifest is for (emberctl fleet sign --fleet)")
	case !namePattern.MatchString(m.Fleet):
		bad("fleet", "%q must be 1-64 letters, digits, '.', '_', ':' or '-'", m.Fleet)
	}
	if len(m.Devices) > maxDevices {
		bad("devices", "at most %d devices, got %d", maxDevices, len(m.Devices))
	}
	seen := map[string]int{}
	for i, d := range m.Devices {
		p := fmt.Sprintf("devices[%d]", i)
		if !namePattern.MatchString(d) {
			bad(p, "%q must be 1-64 letters, digits, '.', '_', ':' or '-'", d)
		} else if j, dup := seen[d]; dup {
			bad(p, "duplicate device %q (also devices[%d])", d, j)
		}
		seen[d] = i
	}
	if m.NotAfter.IsZero() {
		bad("not_after", "missing: when the manifest expires (emberctl fleet sign --valid-for)")
	} else if !m.NotBefore.IsZero() && !m.NotBefore.Before(m.NotAfter.Time) {
		bad("not_before", "%s is not before not_after %s", m.NotBefore.UTC().Format(time.RFC3339), m.NotAfter.UTC().Format(time.RFC3339))
	}
	if m.MinVersion < 0 || (m.Version >= 1 && m.MinVersion > m.Version) {
		bad("min_version", "want 0..version (%d), got %d", m.Version, m.MinVersion)
	}
}

// IsLoopback reports whether host (a URL's Hostname) is this machine:
// "localhost", 127.0.0.0/8 or ::1. Plain http to it needs no https.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkTransport refuses a URL that is plain http to a host that is not
// loopback, unless allowHTTP.
func checkTransport(u *url.URL, allowHTTP bool) error {
	if u.Scheme == "https" || allowHTTP || IsLoopback(u.Hostname()) {
		return nil
	}
	return fmt.Errorf("%w: %s is plain http to %s (fleet.require_https; only loopback may be http)", ErrInsecureURL, redact(u.String()), u.Hostname())
}
