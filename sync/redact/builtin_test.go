package redact

import (
	"testing"
)

// redactString runs one builtin over a string value.
func redactString(t *testing.T, builtin, s string) string {
	t.Helper()
	r := mustNew(t, Rule{Builtin: builtin, Replace: "#"})
	var out string
	if err := jsonUnmarshal(r.Redact(quote(s)), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBuiltins(t *testing.T) {
	cases := []struct {
		builtin, in, want string
	}{
		// email: positive
		{"email", "jane.doe@example.com", "#"},
		{"email", "mail Jane.Doe+plant3@mail.example.co.uk now", "mail # now"},
		{"email", "<ops@factory-7.example.de>", "<#>"},
		{"email", "a@b.io, c_d@e.org", "#, #"},
		// email: negative
		{"email", "user@localhost", "user@localhost"},
		{"email", "pump @ line 3", "pump @ line 3"},
		{"email", "@example.com", "@example.com"},
		{"email", "v1.2@3", "v1.2@3"},

		// phone: positive
		{"phone", "+1 202 555 0173", "#"},
		{"phone", "call +44 20 7946 0958 now", "call # now"},
		{"phone", "+49 (30) 1234-5678", "#"},
		{"phone", "+4930123456", "#"},
		{"phone", "(202) 555-0173", "#"},
		{"phone", "tel: 202-555-0173.", "tel: #."},
		{"phone", "202.555.0173", "#"},
		{"phone", "030 1234567", "#"},
		{"phone", "0171-1234567, ask", "#, ask"},
		{"phone", "030/1234567", "#"},
		// phone: negative
		{"phone", "2024-01-15", "2024-01-15"},
		{"phone", "2024-01-15T10:20:30Z", "2024-01-15T10:20:30Z"},
		{"phone", "10.0.0.1", "10.0.0.1"},
		{"phone", "1700000000", "1700000000"},
		{"phone", "reading 2025550173", "reading 2025550173"},
		{"phone", "v1.2.3", "v1.2.3"},
		{"phone", "12:30:45", "12:30:45"},
		{"phone", "3.14159", "3.14159"},
		{"phone", "+25.375 C", "+25.375 C"},
		{"phone", "temps 120 340 5600", "temps 120 340 5600"},
		{"phone", "SN-2024-00123", "SN-2024-00123"},
		{"phone", "007 123", "007 123"},

		// ipv4: positive
		{"ipv4", "10.0.0.1", "#"},
		{"ipv4", "from 192.168.1.254:1883", "from #:1883"},
		{"ipv4", "net 10.0.0.0/8.", "net #/8."},
		{"ipv4", "1.1.1.1 2.2.2.2", "# #"},
		{"ipv4", "ip=255.255.255.255,", "ip=#,"},
		{"ipv4", "[0.0.0.0]", "[#]"},
		// ipv4: negative
		{"ipv4", "1.2.3.4.5", "1.2.3.4.5"},
		{"ipv4", "256.1.1.1", "256.1.1.1"},
		{"ipv4", "1.2.3", "1.2.3"},
		{"ipv4", "3.14", "3.14"},
		{"ipv4", "v1.2.3.4", "v1.2.3.4"},
		{"ipv4", "1234.1.1.1", "1234.1.1.1"},
		{"ipv4", "15.01.2024", "15.01.2024"},

		// serial: positive
		{"serial", "SN-2024-00123", "#"},
		{"serial", "unit PX-4431-XK-09 failed", "unit # failed"},
		{"serial", "A1B2C3D4", "#"},
		{"serial", "C02XK0ZHJG5J", "#"},
		{"serial", "ABC12345", "#"},
		{"serial", "S/N: 99812", "S/N: #"},
		{"serial", "serial number 4711-xz", "serial number #"},
		{"serial", "Serial#: ab-1234", "Serial#: #"},
		{"serial", "sn=7781a", "sn=#"},
		{"serial", "SN4711A", "SN#"},
		// serial: negative
		{"serial", "ISO-8601", "ISO-8601"},
		{"serial", "ERR-1234", "ERR-1234"},
		{"serial", "HTTP2", "HTTP2"},
		{"serial", "COVID-19", "COVID-19"},
		{"serial", "RTX4090", "RTX4090"},
		{"serial", "MODEL-X200", "MODEL-X200"},
		{"serial", "2024-01-15", "2024-01-15"},
		{"serial", "2024-01-15T10:20:30Z", "2024-01-15T10:20:30Z"},
		{"serial", "ALARM", "ALARM"},
		{"serial", "serial port ttyS", "serial port ttyS"},
		{"serial", "snapshot42", "snapshot42"},
		{"serial", "e3b0c44298fc1c149afbf4c8996fb924", "e3b0c44298fc1c149afbf4c8996fb924"},
		{"serial", "1234567890", "1234567890"},
	}
	for _, c := range cases {
		t.Run(c.builtin+"/"+c.in, func(t *testing.T) {
			if got := redactString(t, c.builtin, c.in); got != c.want {
				t.Errorf("%s(%q) = %q, want %q", c.builtin, c.in, got, c.want)
			}
		})
	}
}
