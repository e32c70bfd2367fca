package ctl

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/spf13/cobra"

	"github.com/ember-edge/ember/internal/bytesize"
	"github.com/ember-edge/ember/internal/durable"
	"github.com/ember-edge/ember/internal/tlsconf"
	"github.com/ember-edge/ember/sync/fleet"
)

// fleetCommand groups the operator's side of fleet updates: keys,
// signing and publishing desired-state manifests. None of it talks to
// emberd. FORMAT.md in sync/fleet describes what these commands write.
func (a *app) fleetCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "Make keys, sign and publish desired-state manifests for fleet updates",
		Long: `Fleet updates: an operator signs a manifest (the models and pipelines a
device should run, with checks they must pass) and publishes it retained
on the fleet's MQTT broker; each device verifies the signature against
its fleet.trusted_keys, downloads, checks and switches, or rolls back.

  emberctl fleet keygen --out keys/
  emberctl fleet sign --key keys/fleet.key --fleet line3 --manifest release.yaml --out release.json
  emberctl fleet verify --key keys/fleet.pub release.json
  emberctl fleet publish --url tcp://broker:1883 --fleet line3 release.json

Keys rotate in band when devices pin a root key (fleet.root_key):
  emberctl fleet keygen --out root/
  emberctl fleet keys sign --root-key root/fleet.key --fleet line3 --version 2 --keys new/fleet.pub --out keys.json
  emberctl fleet publish --url tcp://broker:1883 --fleet line3 keys.json

What the devices sent, from the fleet database the collectors write:
  emberctl fleet devices --db postgres://…/ember
  emberctl fleet records --db postgres://…/ember --device press-07 --since 24h --kind deadletter -o json`,
	}
	cmd.AddCommand(a.fleetKeygen(), a.fleetSign(), a.fleetVerify(), a.fleetPublish(), a.fleetKeys(), a.fleetDevices(), a.fleetRecords())
	return cmd
}

func (a *app) fleetKeygen() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "keygen --out DIR",
		Short: "Write a new ed25519 signing key pair: DIR/fleet.key (0600) and DIR/fleet.pub",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError{errors.New("--out DIR is required")}
			}
			keyPath, pubPath := filepath.Join(out, "fleet.key"), filepath.Join(out, "fleet.pub")
			for _, p := range []string{keyPath, pubPath} {
				if _, err := os.Lstat(p); err == nil {
					return fmt.Errorf("%s exists; keygen never overwrites a key (move it away first)", p)
				} else if !errors.Is(err, fs.ErrNotExist) {
					return err
				}
			}
			pub, priv, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return err
			}
			privPEM, err := fleet.MarshalPrivateKey(priv)
			if err != nil {
				return err
			}
			pubPEM, err := fleet.MarshalPublicKey(pub)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o700); err != nil {
				return err
			}
			if err := writeNew(keyPath, privPEM, 0o600); err != nil {
				return err
			}
			if err := writeNew(pubPath, pubPEM, 0o644); err != nil {
				os.Remove(keyPath)
				return err
			}
			id, b64 := fleet.KeyID(pub), base64.StdEncoding.EncodeToString(pub)
			if a.json() {
				return a.printJSON(map[string]string{"key_id": id, "public_key": b64, "private_key_file": keyPath, "public_key_file": pubPath})
			}
			fmt.Fprintf(a.stdout, "wrote %s (private: keep it off the devices) and %s\n", keyPath, pubPath)
			fmt.Fprintf(a.stdout, "key id %s\n", id)
			fmt.Fprintf(a.stdout, "devices trust it with, in their config:\n  fleet:\n    trusted_keys:\n      - %s\n", b64)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory for fleet.key and fleet.pub")
	return cmd
}

// writeNew creates path with data, refusing to replace anything, and
// fsyncs it.
func writeNew(path string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

func (a *app) fleetSign() *cobra.Command {
	var keys, devices []string
	var manifest, out, fleetName string
	var validFor time.Duration
	var minVersion int64
	cmd := &cobra.Command{
		Use:   "sign --key FILE --fleet F --manifest FILE.yaml --out FILE.json",
		Short: "Validate a manifest and write it as a signed envelope",
		Long: `Reads a manifest in YAML, checks every rule (errors name the line), and
writes the signed envelope. Give --key more than once to sign with several
keys, as during a key rotation (any key a device trusts is enough), or for
a version jump above fleet.max_version_jump (two different keys needed).

The signature covers the manifest's scope: --fleet (or fleet: in the
YAML), the devices (--device, repeatable; none: every device of the
fleet), the expiry (not_after: in the YAML, else now + --valid-for) and
--min-version. A device refuses a manifest for another fleet or device,
or outside its validity period.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(keys) == 0:
				return usageError{errors.New("--key FILE is required")}
			case manifest == "":
				return usageError{errors.New("--manifest FILE.yaml is required")}
			case out == "":
				return usageError{errors.New("--out FILE.json is required")}
			}
			if fleetName != "" {
				if err := fleet.CheckName(fleetName); err != nil {
					return usageError{fmt.Errorf("--fleet: %w", err)}
				}
			}
			if validFor <= 0 {
				return usageError{errors.New("--valid-for must be positive")}
			}
			data, err := os.ReadFile(manifest)
			if err != nil {
				return err
			}
			m, err := fleet.ParseManifestYAMLScoped(data, fleet.Scope{Fleet: fleetName, Devices: devices,
				NotAfter: time.Now().Add(validFor).UTC().Truncate(time.Second), MinVersion: minVersion})
			if err != nil {
				return fmt.Errorf("%s: %w", manifest, err)
			}
			var privs []ed25519.PrivateKey
			var ids []string
			for _, k := range keys {
				b, err := os.ReadFile(k)
				if err != nil {
					return err
				}
				priv, err := fleet.ParsePrivateKey(b)
				if err != nil {
					return fmt.Errorf("--key %s: %w", k, err)
				}
				privs = append(privs, priv)
				ids = append(ids, fleet.KeyID(priv.Public().(ed25519.PublicKey)))
			}
			env, err := fleet.Sign(m, privs...)
			if err != nil {
				return err
			}
			if err := writeReplace(out, env); err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(map[string]any{"out": out, "version": m.Version, "key_ids": ids,
					"artifacts": len(m.Artifacts), "checks": len(m.Checks), "fleet": m.Fleet, "devices": m.Devices,
					"not_after": m.NotAfter.UTC().Format(time.RFC3339), "min_version": m.MinVersion})
			}
			scope := "every device"
			if len(m.Devices) > 0 {
				scope = fmt.Sprintf("%d devices", len(m.Devices))
			}
			fmt.Fprintf(a.stdout, "signed version %d (%d artifacts, %d checks) for fleet %s (%s) until %s with key %s: %s\n",
				m.Version, len(m.Artifacts), len(m.Checks), m.Fleet, scope, m.NotAfter.UTC().Format(time.RFC3339), strings.Join(ids, ", "), out)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&keys, "key", nil, "private key file (PEM, from keygen); repeat to sign with several")
	cmd.Flags().StringVar(&fleetName, "fleet", "", "the fleet the manifest is for (unless the YAML says fleet:)")
	cmd.Flags().StringArrayVar(&devices, "device", nil, "a device (device_id) the manifest is for; repeatable; none: the whole fleet")
	cmd.Flags().DurationVar(&validFor, "valid-for", 30*24*time.Hour, "expiry from now, unless the YAML says not_after:")
	cmd.Flags().Int64Var(&minVersion, "min-version", 0, "the oldest version devices may keep or roll back to once this one is committed")
	cmd.Flags().StringVar(&manifest, "manifest", "", "manifest to sign (YAML)")
	cmd.Flags().StringVar(&out, "out", "", "signed envelope to write (JSON)")
	return cmd
}

// writeReplace replaces path with data durably (see package durable).
func writeReplace(path string, data []byte) error {
	return durable.WriteFile(path, 0o644, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

func (a *app) fleetVerify() *cobra.Command {
	var keys []string
	cmd := &cobra.Command{
		Use:   "verify --key FILE|BASE64 FILE.json",
		Short: "Check a signed envelope as a device would, and show its manifest",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(keys) == 0 {
				return usageError{errors.New("--key is required: a public key file or base64 key a device trusts")}
			}
			ring, err := fleet.LoadTrustedKeys(keys, "")
			if err != nil {
				return err
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			v, err := fleet.Verify(data, ring)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if a.json() {
				return a.printJSON(map[string]any{"version": v.Manifest.Version, "digest": v.Digest,
					"key_ids": v.KeyIDs, "manifest": v.Manifest})
			}
			fmt.Fprintf(a.stdout, "%s: version %d, signed by %s, digest %.12s\n", args[0], v.Manifest.Version,
				strings.Join(v.KeyIDs, ", "), v.Digest)
			scope := "every device"
			if len(v.Manifest.Devices) > 0 {
				scope = "devices " + strings.Join(v.Manifest.Devices, ", ")
			}
			fmt.Fprintf(a.stdout, "fleet %s, %s, valid until %s", v.Manifest.Fleet, scope, v.Manifest.NotAfter.UTC().Format(time.RFC3339))
			if !v.Manifest.NotBefore.IsZero() {
				fmt.Fprintf(a.stdout, " from %s", v.Manifest.NotBefore.UTC().Format(time.RFC3339))
			}
			if v.Manifest.MinVersion > 0 {
				fmt.Fprintf(a.stdout, ", min version %d", v.Manifest.MinVersion)
			}
			fmt.Fprintln(a.stdout)
			tw := a.table()
			fmt.Fprintln(tw, "KIND\tNAME\tSIZE\tLICENSE\tSHA256\tURL")
			for _, art := range v.Manifest.Artifacts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.12s\t%s\n", art.Kind, art.Name, bytesize.Size(art.Size), dash(art.License), art.SHA256, art.URL)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%d checks\n", len(v.Manifest.Checks))
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&keys, "key", nil, "trusted public key: a file (PEM or base64) or a base64 key; repeatable")
	return cmd
}

// publishFlags are the broker connection's settings.
type publishFlags struct {
	url, fleet, device     string
	username, password     string
	tlsCA, tlsCert, tlsKey string
	clientID               string
	clear                  bool
	timeout                time.Duration
}

func (a *app) fleetPublish() *cobra.Command {
	var f publishFlags
	cmd := &cobra.Command{
		Use:   "publish --url URL --fleet F [--device D] FILE.json",
		Short: "Publish a signed envelope, retained with QoS 1, as a fleet's (or one device's) desired state",
		Long: `Checks that FILE.json is a well-formed signed envelope, then publishes it
retained with QoS 1 on fleet/v1/F/desired, or on fleet/v1/F/D/desired with
--device (a device's own manifest wins over the fleet's). Devices that are
offline get it when they reconnect. --clear removes the retained message
instead (a device without its own then follows the fleet's again).

URL is tcp://host:port or ssl://host:port (mqtt:// and mqtts:// too).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.publish(f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.url, "url", "", "broker URL: tcp://host:1883 or ssl://host:8883")
	fl.StringVar(&f.fleet, "fleet", "", "fleet name")
	fl.StringVar(&f.device, "device", "", "publish for this device only")
	fl.StringVar(&f.username, "username", "", "broker user name")
	fl.StringVar(&f.password, "password", "", "broker password (default $EMBER_MQTT_PASSWORD)")
	fl.StringVar(&f.tlsCA, "tls-ca", "", "CA certificate (PEM) that signed the broker's certificate")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "client certificate (PEM) for mutual TLS")
	fl.StringVar(&f.tlsKey, "tls-key", "", "client certificate's key (PEM)")
	fl.StringVar(&f.clientID, "client-id", "", "MQTT client id (default: emberctl-fleet- and a random suffix)")
	fl.BoolVar(&f.clear, "clear", false, "remove the retained desired state instead of publishing one")
	fl.DurationVar(&f.timeout, "timeout", 30*time.Second, "give up connecting and publishing after this long")
	return cmd
}

func (a *app) publish(f publishFlags, args []string) error {
	switch {
	case f.url == "":
		return usageError{errors.New("--url is required, e.g. tcp://broker:1883")}
	case f.fleet == "":
		return usageError{errors.New("--fleet is required")}
	case f.clear && len(args) > 0:
		return usageError{errors.New("--clear takes no FILE")}
	case !f.clear && len(args) == 0:
		return usageError{errors.New("FILE.json is required (or --clear)")}
	case (f.tlsCert == "") != (f.tlsKey == ""):
		return usageError{errors.New("--tls-cert and --tls-key go together")}
	}
	if err := fleet.CheckName(f.fleet); err != nil {
		return usageError{fmt.Errorf("--fleet: %w", err)}
	}
	topic := fleet.FleetDesiredTopic(f.fleet)
	if f.device != "" {
		if err := fleet.CheckName(f.device); err != nil {
			return usageError{fmt.Errorf("--device: %w", err)}
		}
		topic = fleet.DeviceDesiredTopic(f.fleet, f.device)
	}
	broker, err := brokerAddress(f.url)
	if err != nil {
		return usageError{err}
	}
	var payload []byte
	var version int64
	if !f.clear {
		data, err := os.ReadFile(args[0])
		if err != nil {
			return err
		}
		var signedFleet string
		if _, m, err := fleet.ParseEnvelope(data); err == nil {
			signedFleet, version = m.Fleet, m.Version
		} else if kl, kerr := fleet.ParseKeyList(data); kerr == nil {
			if f.device != "" {
				return usageError{errors.New("a key list is the fleet's: --device does not apply")}
			}
			signedFleet, version, topic = kl.Fleet, kl.Version, fleet.KeyListTopic(f.fleet)
		} else {
			return fmt.Errorf("%s is not a well-formed signed envelope or key list, nothing published: %w", args[0], err)
		}
		if signedFleet != f.fleet {
			return fmt.Errorf("%s is signed for fleet %q, not %q: devices of %q would refuse it; nothing published", args[0], signedFleet, f.fleet, f.fleet)
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, data); err != nil {
			return err
		}
		payload = buf.Bytes()
	}
	opts, err := a.mqttOptions(f, broker)
	if err != nil {
		return err
	}
	cli := paho.NewClient(opts)
	tok := cli.Connect()
	if !tok.WaitTimeout(f.timeout) {
		return fmt.Errorf("connect to %s: no answer in %v", broker, f.timeout)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("connect to %s: %w", broker, err)
	}
	defer cli.Disconnect(250)
	pub := cli.Publish(topic, 1, true, payload)
	if !pub.WaitTimeout(f.timeout) {
		return fmt.Errorf("publish to %s: no acknowledgement in %v", topic, f.timeout)
	}
	if err := pub.Error(); err != nil {
		return fmt.Errorf("publish to %s: %w", topic, err)
	}
	if a.json() {
		return a.printJSON(map[string]any{"topic": topic, "version": version, "bytes": len(payload), "retained": true, "cleared": f.clear})
	}
	if f.clear {
		fmt.Fprintf(a.stdout, "cleared the retained desired state on %s\n", topic)
		return nil
	}
	fmt.Fprintf(a.stdout, "published version %d to %s (retained, QoS 1, %d bytes)\n", version, topic, len(payload))
	return nil
}

// brokerAddress checks a broker URL and maps mqtt:// and mqtts:// onto
// the schemes paho knows.
func brokerAddress(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("--url %q: %w", raw, err)
	}
	switch u.Scheme {
	case "tcp", "ssl", "tls", "ws", "wss":
	case "mqtt":
		u.Scheme = "tcp"
	case "mqtts":
		u.Scheme = "ssl"
	default:
		return "", fmt.Errorf("--url %q: scheme %q: want tcp://host:port or ssl://host:port", raw, u.Scheme)
	}
	if u.Hostname() == "" || u.Port() == "" {
		return "", fmt.Errorf("--url %q: want host:port", raw)
	}
	return u.String(), nil
}

func (a *app) mqttOptions(f publishFlags, broker string) (*paho.ClientOptions, error) {
	id := f.clientID
	if id == "" {
		b := make([]byte, 4)
		rand.Read(b)
		id = "emberctl-fleet-" + hex.EncodeToString(b)
	}
	password := f.password
	if password == "" {
		password = os.Getenv("EMBER_MQTT_PASSWORD")
	}
	opts := paho.NewClientOptions().
		AddBroker(broker).
		SetClientID(id).
		SetUsername(f.username).
		SetPassword(password).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectTimeout(f.timeout).
		SetWriteTimeout(f.timeout)
	if f.tlsCA != "" || f.tlsCert != "" || strings.HasPrefix(broker, "ssl:") || strings.HasPrefix(broker, "tls:") || strings.HasPrefix(broker, "wss:") {
		tc, err := tlsconf.Client{CA: f.tlsCA, Cert: f.tlsCert, Key: f.tlsKey, Keys: tlsconf.Keys{
			CA: "--tls-ca", Cert: "--tls-cert", Key: "--tls-key"}}.Config()
		if err != nil {
			return nil, err
		}
		opts.SetTLSConfig(tc)
	}
	return opts, nil
}
