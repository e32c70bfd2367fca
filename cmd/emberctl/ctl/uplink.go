package ctl

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ember-edge/ember/internal/tlsconf"
	"github.com/ember-edge/ember/sync/consumer"
)

// uplinkCommand groups the fleet operator's side of the devices' uplink.
// None of it talks to emberd.
func (a *app) uplinkCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "uplink",
		Short: "Receive what devices upload to the fleet's MQTT broker",
		Long: `Devices upload their outbox (results, telemetry, dead letters, audit
records) to the fleet's MQTT broker in gzip'd batches. These commands are
the fleet's side; sync/DESIGN.md describes the format.

  emberctl uplink consume --url tcp://broker:1883 --fleet line3 --out records.jsonl`,
	}
	cmd.AddCommand(a.uplinkConsume())
	return cmd
}

type consumeFlags struct {
	url, fleet, out     string
	clientID, share     string
	username, password  string
	ca, tlsCert, tlsKey string
	progress            time.Duration
}

func (a *app) uplinkConsume() *cobra.Command {
	var f consumeFlags
	cmd := &cobra.Command{
		Use:   "consume --url URL --fleet F --out FILE",
		Short: "Write every record the fleet's devices upload to FILE as JSON lines, once each",
		Long: `Subscribes (QoS 1, persistent session) to every device's record topics of
fleet F (fleet/v1/F/+/results, telemetry, deadletters, audit), verifies
each batch (format, sha256 of every record), drops records already
written (by device_id, outbox_id and seq: devices resend after a dropped
link) and appends the others to FILE, one JSON object per line with
device_id, seq, kind, priority, created_at, sha256 and data (as sent,
redacted on the device). Runs until interrupted. Records are fsynced
before the broker hears they arrived; a restart reads FILE to know what
it has, and the broker keeps what came meanwhile for the same
--client-id.

URL is tcp://host:port or ssl://host:port (mqtt:// and mqtts:// too).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return a.consume(f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.url, "url", "", "broker URL: tcp://host:1883 or ssl://host:8883")
	fl.StringVar(&f.fleet, "fleet", "", "fleet name")
	fl.StringVar(&f.out, "out", "", "JSON-lines file to append records to")
	fl.StringVar(&f.clientID, "client-id", "", "MQTT client id, which names the persistent session: keep it stable (default ember-consumer-F)")
	fl.StringVar(&f.share, "share", "", "subscribe as a member of this shared subscription group (several consumers split the load; each needs its own de-duplication)")
	fl.StringVar(&f.username, "username", "", "broker user name")
	fl.StringVar(&f.password, "password", "", "broker password (default $EMBER_MQTT_PASSWORD)")
	fl.StringVar(&f.ca, "ca", "", "CA certificate (PEM) that signed the broker's certificate")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "client certificate (PEM) for mutual TLS")
	fl.StringVar(&f.tlsKey, "tls-key", "", "client certificate's key (PEM)")
	fl.DurationVar(&f.progress, "progress", 10*time.Second, "how often to print progress to stderr (0: only the summary)")
	return cmd
}

func (a *app) consume(f consumeFlags) error {
	switch {
	case f.url == "":
		return usageError{errors.New("--url is required, e.g. tcp://broker:1883")}
	case f.fleet == "":
		return usageError{errors.New("--fleet is required")}
	case f.out == "":
		return usageError{errors.New("--out FILE is required")}
	case (f.tlsCert == "") != (f.tlsKey == ""):
		return usageError{errors.New("--tls-cert and --tls-key go together")}
	}
	if f.password == "" {
		f.password = os.Getenv("EMBER_MQTT_PASSWORD")
	}
	o := consumer.Options{URL: f.url, Fleet: f.fleet, Out: f.out, ClientID: f.clientID, Share: f.share,
		Username: f.username, Password: f.password,
		Logger: slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	if f.ca != "" || f.tlsCert != "" || strings.HasPrefix(f.url, "ssl:") || strings.HasPrefix(f.url, "mqtts:") || strings.HasPrefix(f.url, "tls:") {
		tc, err := tlsconf.Client{CA: f.ca, Cert: f.tlsCert, Key: f.tlsKey, Keys: tlsconf.Keys{
			CA: "--ca", Cert: "--tls-cert", Key: "--tls-key"}}.Config()
		if err != nil {
			return err
		}
		o.TLS = tc
	}
	c, err := consumer.New(o)
	if err != nil {
		return err
	}
	sink := c.Sink()
	start := sink.Stats()
	fmt.Fprintf(a.stderr, "consuming fleet %s from %s into %s (%d records there already); Ctrl-C to stop\n",
		f.fleet, f.url, f.out, start.Loaded)
	done := make(chan error, 1)
	go func() { done <- c.Run(a.ctx) }()
	var tick <-chan time.Time
	if f.progress > 0 {
		t := time.NewTicker(f.progress)
		defer t.Stop()
		tick = t.C
	}
	last := start
	for {
		select {
		case err := <-done:
			st := sink.Stats()
			fmt.Fprintf(a.stderr, "consumed %d new records (%d in %s from %d devices); %d duplicates dropped, %d batches rejected, %d audit chain gaps\n",
				st.Records, st.Loaded+st.Records, f.out, st.Devices, st.Duplicates, st.Rejected, st.AuditGaps)
			return err
		case <-tick:
			if st := sink.Stats(); st != last {
				fmt.Fprintf(a.stderr, "%s: %d new records from %d devices, %d duplicates dropped, %d rejected, %d audit gaps\n",
					time.Now().Format("15:04:05"), st.Records, st.Devices, st.Duplicates, st.Rejected, st.AuditGaps)
				last = st
			}
		}
	}
}
