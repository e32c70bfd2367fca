package ctl

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/ember-edge/ember/sync/collector/pgsink"
)

// fleetDevices and fleetRecords read the fleet database the collectors
// write (emberctl collector run): the operator's view of every device.
func (a *app) fleetDevices() *cobra.Command {
	var db, fleet string
	cmd := &cobra.Command{
		Use:   "devices --db URL [--fleet F]",
		Short: "List the fleet's devices from the fleet database: last seen, backlog, active version, update phase",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.openFleetDB(db)
			if err != nil {
				return err
			}
			defer s.Close()
			ds, err := s.Devices(a.ctx, fleet)
			if err != nil {
				return err
			}
			if a.json() {
				if ds == nil {
					ds = []pgsink.Device{}
				}
				return a.printJSON(map[string]any{"devices": ds})
			}
			tw := a.table()
			fmt.Fprintln(tw, "DEVICE\tFLEET\tLAST SEEN\tRECORDS\tBACKLOG\tUNCONFIRMED\tVERSION\tUPDATE")
			for _, d := range ds {
				fmt.Fprintf(tw, "%s\t%s\t%s ago\t%d\t%s\t%s\t%s\t%s\n", d.ID, d.Fleet, time.Since(d.LastSeen).Round(time.Second),
					d.Records, orDash(d.Backlog), orDash(d.Unconfirmed), orDash(d.ActiveVersion), dashIfEmpty(d.UpdatePhase))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&db, "db", "", "PostgreSQL URL of the fleet database (default $EMBER_DB)")
	cmd.Flags().StringVar(&fleet, "fleet", "", "only this fleet's devices")
	return cmd
}

func (a *app) fleetRecords() *cobra.Command {
	var db, device, since, kind string
	var limit int
	cmd := &cobra.Command{
		Use:   "records --db URL --device D [--since T] [--kind K]",
		Short: "Show a device's records from the fleet database, oldest first",
		Long: `--since takes a time (RFC 3339, e.g. 2026-12-04T08:00:00Z) or a duration
back from now (24h). --kind is result, deadletter, telemetry or audit.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if device == "" {
				return usageError{errors.New("--device is required")}
			}
			from, err := parseSince(since, time.Now())
			if err != nil {
				return usageError{err}
			}
			s, err := a.openFleetDB(db)
			if err != nil {
				return err
			}
			defer s.Close()
			rs, err := s.Records(a.ctx, pgsink.RecordQuery{Device: device, Since: from, Kind: kind, Limit: limit})
			if err != nil {
				return err
			}
			if a.json() {
				if rs == nil {
					rs = []pgsink.StoredRecord{}
				}
				return a.printJSON(map[string]any{"records": rs})
			}
			tw := a.table()
			fmt.Fprintln(tw, "SEQ\tKIND\tPIPELINE\tCREATED\tDATA")
			for _, r := range rs {
				data := string(r.Data)
				if len(data) > 80 {
					data = data[:77] + "..."
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", r.Seq, r.Kind, dashIfEmpty(r.Pipeline), r.CreatedAt.Local().Format(time.DateTime), data)
			}
			return tw.Flush()
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&db, "db", "", "PostgreSQL URL of the fleet database (default $EMBER_DB)")
	fl.StringVar(&device, "device", "", "the device's id")
	fl.StringVar(&since, "since", "", "records created since this time or duration (default: all)")
	fl.StringVar(&kind, "kind", "", "only records of this kind")
	fl.IntVar(&limit, "limit", 1000, "at most this many records")
	return cmd
}

// openFleetDB connects to the fleet database (and brings its schema up to
// date, as a collector would).
func (a *app) openFleetDB(db string) (*pgsink.Sink, error) {
	if db == "" {
		db = os.Getenv("EMBER_DB")
	}
	if db == "" {
		return nil, usageError{errors.New("--db POSTGRES_URL (or $EMBER_DB) is required")}
	}
	return pgsink.Open(a.ctx, db)
}

// parseSince reads --since: an RFC 3339 time, or a duration back from now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--since %q: want a time like 2026-12-04T08:00:00Z or a duration like 24h", s)
	}
	return t, nil
}

func orDash(p *int64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
