package uplink_test

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/daemon/store"
	"github.com/ember-edge/ember/internal/testkit"
	"github.com/ember-edge/ember/internal/tlsconf"
	"github.com/ember-edge/ember/internal/tlsconf/tlstest"
	"github.com/ember-edge/ember/sync/uplink"
)

// tlsFiles writes a CA, a server certificate for 127.0.0.1 and a client
// certificate signed by it into dir.
func tlsFiles(t *testing.T, dir string) {
	t.Helper()
	ca := tlstest.NewCA(t, dir)
	ca.Issue(t, "server", x509.ExtKeyUsageServerAuth)
	ca.Issue(t, "device", x509.ExtKeyUsageClientAuth)
}

// startTLSMosquitto starts mosquitto with one TLS listener that requires
// a client certificate signed by dir/ca.pem; it returns its address.
func startTLSMosquitto(t *testing.T, dir string) string {
	t.Helper()
	bin, ok := testkit.MosquittoInstalled()
	if !ok {
		t.Fatal("mosquitto is not installed; these tests need a real broker: apt-get install mosquitto")
	}
	port, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	// user root: run as root, mosquitto would otherwise drop to a user who
	// cannot read the test's temp dir (a non-root run ignores it).
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nuser root\n"+
		"cafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\n", port,
		filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key"))
	path := filepath.Join(dir, "mosquitto.conf")
	os.WriteFile(path, []byte(conf), 0o644)
	cmd := exec.Command(bin, "-c", path)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", logs.String())
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitUntil(t, 10*time.Second, "mosquitto listening with TLS", func() bool {
		select {
		case <-exited:
			t.Fatalf("mosquitto exited: %s", logs.String())
		default:
		}
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr
}

// TestUplinkOverMutualTLS: the daemon's config (uplink.ca, uplink.tls)
// through FromConfig reaches a broker that requires a client
// certificate; without the certificate the device stays offline.
func TestUplinkOverMutualTLS(t *testing.T) {
	dir := t.TempDir()
	tlsFiles(t, dir)
	addr := startTLSMosquitto(t, dir)

	// The fleet side listens over TLS too.
	fleetTLS, err := tlsconf.Client{CA: filepath.Join(dir, "ca.pem"),
		Cert: filepath.Join(dir, "device.pem"), Key: filepath.Join(dir, "device.key")}.Config()
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 16)
	fleetSide := paho.NewClient(paho.NewClientOptions().AddBroker("ssl://" + addr).SetClientID("fleet-side").
		SetTLSConfig(fleetTLS))
	if tok := fleetSide.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer fleetSide.Disconnect(0)
	if tok := fleetSide.Subscribe("fleet/v1/plant/+/results", 1, func(_ paho.Client, m paho.Message) { got <- m.Payload() }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}

	cfg := config.Default().Uplink
	cfg.URL, cfg.Fleet = "mqtts://"+addr, "plant"
	cfg.CA = filepath.Join(dir, "ca.pem")
	cfg.Backoff = config.Backoff{Min: config.Duration(20 * time.Millisecond), Max: config.Duration(100 * time.Millisecond)}

	// No client certificate: refused, offline.
	st := uplink.OpenTestStore(t)
	uplink.AppendInOrder(t, st, []store.Record{{Kind: store.KindResult, Priority: 5, Data: []byte(`{"ok":true}`)}})
	o, err := uplink.FromConfig(cfg, nil, "dev-1")
	if err != nil {
		t.Fatal(err)
	}
	o.Outbox, o.Settings, o.SettingsNotFound, o.Logger = uplink.StoreOutbox{Store: st}, st, store.ErrNotFound, logger()
	u, err := uplink.New(o)
	if err != nil {
		t.Fatal(err)
	}
	stop := runUplink(t, u)
	waitUntil(t, 10*time.Second, "a few refused dials", func() bool { return u.Status().DialAttempts >= 3 })
	if s := u.Status(); s.Connects != 0 || s.LastError == "" {
		t.Fatalf("without a client certificate: %d connects, last error %q", s.Connects, s.LastError)
	}
	stop()

	// With it: online, and the record arrives.
	cfg.TLS = config.TLS{Cert: filepath.Join(dir, "device.pem"), Key: filepath.Join(dir, "device.key")}
	o, err = uplink.FromConfig(cfg, nil, "dev-1")
	if err != nil {
		t.Fatal(err)
	}
	o.Outbox, o.Settings, o.SettingsNotFound, o.Logger = uplink.StoreOutbox{Store: st}, st, store.ErrNotFound, logger()
	u, err = uplink.New(o)
	if err != nil {
		t.Fatal(err)
	}
	runUplink(t, u)
	select {
	case p := <-got:
		env, err := uplink.DecodeEnvelope(p, 0)
		if err != nil || env.DeviceID != "dev-1" || string(env.Records[0].Data) != `{"ok":true}` {
			t.Fatalf("received %+v (%v)", env, err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("nothing arrived over TLS; status %+v", u.Status())
	}

	// Config errors name the key.
	cfg.CA = filepath.Join(dir, "missing.pem")
	if _, err := uplink.FromConfig(cfg, nil, "dev-1"); err == nil || !bytes.Contains([]byte(err.Error()), []byte("uplink.ca")) {
		t.Errorf("FromConfig with a missing CA: %v", err)
	}
}
