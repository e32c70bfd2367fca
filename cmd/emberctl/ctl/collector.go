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
	"github.com/ember-edge/ember/sync/collector"
	"github.com/ember-edge/ember/sync/collector/pgsink"
	"github.com/ember-edge/ember/sync/consumer"
)

type collectorFlags struct {
	url, fleet, db, out, group, clientID string
	username, password                   string
	ca, tlsCert, tlsKey                  string
	batch                                int
	progress                             time.Duration
}

func (a *app) collectorCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "collector",
		Short: "Store what the fleet's devices upload in the fleet database, and confirm it to them",
	}
	var f collectorFlags
	run := &cobra.Command{
		Use:   "run --url URL --fleet F --db POSTGRES_URL [--group G]",
		Short: "Collect every device's records into PostgreSQL; run several to split the load",
		Long: `Subscribes with MQTT 5 shared subscriptions ($share/G/fleet/v1/F/+/results,
telemetry, deadletters, audit, reported) so that the collectors of group G
split the messages, verifies each batch (format, sha256 of every record),
writes batches into PostgreSQL (ember_records, unique by device_id,
outbox_id and seq; ember_devices), commits, and only then confirms to each
device on fleet/v1/F/<device>/ack and acknowledges the MQTT messages.
Devices keep every record until it is confirmed and send unconfirmed ones
again, so a collector holds no state: kill it, restart it, run more.
The schema is created and migrated at start (migrations embedded).
--out FILE writes JSON lines instead of --db, for development (one
collector only). Runs until interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return a.collect(f) },
	}
	fl := run.Flags()
	fl.StringVar(&f.url, "url", "", "broker URL: tcp://host:1883 or ssl://host:8883")
	fl.StringVar(&f.fleet, "fleet", "", "fleet name")
	fl.StringVar(&f.db, "db", "", "PostgreSQL URL, e.g. postgres://user@host/ember (default $EMBER_DB)")
	fl.StringVar(&f.out, "out", "", "development sink: a JSON-lines file instead of --db")
	fl.StringVar(&f.group, "group", "ember-collector", "shared subscription group")
	fl.StringVar(&f.clientID, "client-id", "", "MQTT client id (default: unique per process)")
	fl.StringVar(&f.username, "username", "", "broker user name")
	fl.StringVar(&f.password, "password", "", "broker password (default $EMBER_MQTT_PASSWORD)")
	fl.StringVar(&f.ca, "ca", "", "CA certificate (PEM) that signed the broker's certificate")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "client certificate (PEM) for mutual TLS")
	fl.StringVar(&f.tlsKey, "tls-key", "", "client certificate's key (PEM)")
	fl.IntVar(&f.batch, "batch", 256, "envelopes per database transaction")
	fl.DurationVar(&f.progress, "progress", 10*time.Second, "how often to print progress to stderr (0: never)")
	cmd.AddCommand(run)
	return cmd
}

func (a *app) collect(f collectorFlags) error {
	if f.db == "" {
		f.db = os.Getenv("EMBER_DB")
	}
	switch {
	case f.url == "":
		return usageError{errors.New("--url is required, e.g. tcp://broker:1883")}
	case f.fleet == "":
		return usageError{errors.New("--fleet is required")}
	case (f.db == "") == (f.out == ""):
		return usageError{errors.New("exactly one of --db POSTGRES_URL and --out FILE is required")}
	case (f.tlsCert == "") != (f.tlsKey == ""):
		return usageError{errors.New("--tls-cert and --tls-key go together")}
	}
	if f.password == "" {
		f.password = os.Getenv("EMBER_MQTT_PASSWORD")
	}
	log := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	o := collector.Options{URL: f.url, Fleet: f.fleet, Group: f.group, ClientID: f.clientID,
		Username: f.username, Password: f.password, BatchMessages: f.batch, Logger: log}
	if f.ca != "" || f.tlsCert != "" || strings.HasPrefix(f.url, "ssl:") || strings.HasPrefix(f.url, "mqtts:") {
		tc, err := tlsconf.Client{CA: f.ca, Cert: f.tlsCert, Key: f.tlsKey, Keys: tlsconf.Keys{
			CA: "--ca", Cert: "--tls-cert", Key: "--tls-key"}}.Config()
		if err != nil {
			return err
		}
		o.TLS = tc
	}
	if f.db != "" {
		s, err := pgsink.Open(a.ctx, f.db)
		if err != nil {
			return err
		}
		defer s.Close()
		o.Sink = s
	} else {
		s, err := consumer.OpenSink(f.out, consumer.SinkOptions{})
		if err != nil {
			return err
		}
		defer s.Close()
		o.Sink = collector.FileSink{S: s, Matcher: consumer.NewTopicMatcher(f.fleet, o.Topics)}
	}
	c, err := collector.New(o)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "collecting fleet %s from %s (group %s); Ctrl-C to stop\n", f.fleet, f.url, f.group)
	done := make(chan error, 1)
	go func() { done <- c.Run(a.ctx) }()
	var tick <-chan time.Time
	if f.progress > 0 {
		t := time.NewTicker(f.progress)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case err := <-done:
			st := c.Stats()
			fmt.Fprintf(a.stderr, "collected %d records in %d batches; %d envelopes rejected, %d store errors\n",
				st.Records, st.Batches, st.Rejected, st.StoreErrors)
			return err
		case <-tick:
			st := c.Stats()
			fmt.Fprintf(a.stderr, "%s: %d records, %d batches, %d rejected, %d store errors\n",
				time.Now().Format("15:04:05"), st.Records, st.Batches, st.Rejected, st.StoreErrors)
		}
	}
}
