// Package mqtturl reads the broker URLs ember's configs and commands take
// and maps them onto the schemes the paho client knows.
package mqtturl

import (
	"errors"
	"fmt"
	"net/url"
)

// Paho returns raw with mqtt:// as tcp:// and mqtts:// as ssl://; tcp,
// ssl and tls pass as they are. Any other scheme, or no host, is an error.
func Paho(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "mqtt":
		u.Scheme = "tcp"
	case "mqtts":
		u.Scheme = "ssl"
	case "tcp", "ssl", "tls":
	default:
		return "", fmt.Errorf("scheme %q is not tcp, ssl, mqtt or mqtts", u.Scheme)
	}
	if u.Host == "" {
		return "", errors.New("no host")
	}
	return u.String(), nil
}
