package ctl

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/ember-edge/ember/internal/bytesize"
	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
)

func (a *app) syncCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "sync", Short: "Show or nudge the upload of the outbox to the fleet"}
	cmd.AddCommand(&cobra.Command{
		Use: "status", Short: "Link state, backlog, last success, bytes sent today", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := a.dial()
			if err != nil {
				return err
			}
			st, err := emberv1.NewSyncServiceClient(conn).Status(a.ctx, &emberv1.SyncStatusRequest{})
			if err != nil {
				return err
			}
			// The confirmed-delivery counts travel in the uplink's status
			// JSON (uplink.Status.Backlog), absent while it is disabled.
			var us struct {
				Backlog struct {
					Unconfirmed, Confirmed, DroppedUnconfirmed uint64
					OldestUnconfirmed                          time.Time
				}
				Resends uint64
			}
			if st.StatusJson != "" {
				if err := json.Unmarshal([]byte(st.StatusJson), &us); err != nil {
					return fmt.Errorf("reading the uplink's status: %w", err)
				}
			}
			b := us.Backlog
			if a.json() {
				var age any
				if !b.OldestUnconfirmed.IsZero() {
					age = time.Since(b.OldestUnconfirmed).Seconds()
				}
				return a.printJSON(map[string]any{
					"enabled": st.Enabled, "online": st.Online, "state": st.State,
					"backlog_records": st.BacklogRecords, "backlog_bytes": st.BacklogBytes,
					"unsent_records": st.BacklogRecords, "unconfirmed_records": b.Unconfirmed, "confirmed_records": b.Confirmed,
					"oldest_unconfirmed_age_seconds": age, "dropped_unconfirmed": b.DroppedUnconfirmed, "resends": us.Resends,
					"oldest_unsynced":  tsOrNil(st.OldestUnsynced.AsTime(), st.OldestUnsynced != nil),
					"last_success":     tsOrNil(st.LastSuccess.AsTime(), st.LastSuccess != nil),
					"bytes_sent_today": st.BytesSentToday, "records_sent": st.RecordsSent, "batches_sent": st.BatchesSent,
					"dial_attempts": st.DialAttempts, "last_error": st.LastError,
				})
			}
			tw := a.table()
			if !st.Enabled {
				fmt.Fprintf(tw, "uplink\tnot configured (uplink.url)\n")
			} else {
				fmt.Fprintf(tw, "link\t%s\n", st.State)
			}
			fmt.Fprintf(tw, "backlog\t%d records, %s\n", st.BacklogRecords, bytesize.Size(st.BacklogBytes))
			fmt.Fprintf(tw, "records\t%d unsent, %d unconfirmed, %d confirmed\n", st.BacklogRecords, b.Unconfirmed, b.Confirmed)
			if !b.OldestUnconfirmed.IsZero() {
				fmt.Fprintf(tw, "oldest unconfirmed\t%s ago\n", time.Since(b.OldestUnconfirmed).Round(time.Second))
			}
			if b.DroppedUnconfirmed > 0 {
				fmt.Fprintf(tw, "dropped unconfirmed\t%d records (store limits)\n", b.DroppedUnconfirmed)
			}
			if st.OldestUnsynced != nil {
				fmt.Fprintf(tw, "oldest unsynced\t%s ago\n", time.Since(st.OldestUnsynced.AsTime()).Round(time.Second))
			}
			if st.LastSuccess != nil {
				fmt.Fprintf(tw, "last success\t%s\n", st.LastSuccess.AsTime().Local().Format(time.RFC3339))
			}
			if st.Enabled {
				fmt.Fprintf(tw, "sent today\t%s\n", bytesize.Size(st.BytesSentToday))
				fmt.Fprintf(tw, "sent\t%d records in %d batches; %d dial attempts\n", st.RecordsSent, st.BatchesSent, st.DialAttempts)
			}
			if st.LastError != "" {
				fmt.Fprintf(tw, "last error\t%s\n", st.LastError)
			}
			return tw.Flush()
		},
	}, &cobra.Command{
		Use: "now", Short: "Try to connect and upload at once", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := a.dial()
			if err != nil {
				return err
			}
			if _, err := emberv1.NewSyncServiceClient(conn).Now(a.ctx, &emberv1.SyncNowRequest{}); err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(map[string]bool{"triggered": true})
			}
			fmt.Fprintln(a.stdout, "sync attempt started; see `emberctl sync status`")
			return nil
		},
	})
	return cmd
}

func tsOrNil(t time.Time, ok bool) any {
	if !ok {
		return nil
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func (a *app) updateCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "update", Short: "Show fleet updates"}
	cmd.AddCommand(&cobra.Command{
		Use: "status", Short: "Update phase, active version, last error", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := a.dial()
			if err != nil {
				return err
			}
			st, err := emberv1.NewUpdateServiceClient(conn).Status(a.ctx, &emberv1.UpdateStatusRequest{})
			if err != nil {
				return err
			}
			return a.printUpdate(st)
		},
	})
	return cmd
}

func (a *app) printUpdate(st *emberv1.UpdateStatusResponse) error {
	if a.json() {
		return a.printJSON(map[string]any{
			"enabled": st.Enabled, "phase": st.Phase, "active_version": st.ActiveVersion,
			"target_version": st.TargetVersion, "percent": st.Percent, "reason": st.Reason,
			"last_error": st.LastError, "kept_versions": st.KeptVersions,
		})
	}
	tw := a.table()
	if !st.Enabled {
		fmt.Fprintf(tw, "fleet updates\tnot configured (fleet.trusted_keys)\n")
		return tw.Flush()
	}
	phase := st.Phase
	if st.Phase == "downloading" {
		phase += fmt.Sprintf(" %.0f%%", st.Percent)
	}
	fmt.Fprintf(tw, "phase\t%s\n", phase)
	fmt.Fprintf(tw, "active version\t%d\n", st.ActiveVersion)
	if st.TargetVersion != 0 {
		fmt.Fprintf(tw, "target version\t%d\n", st.TargetVersion)
	}
	fmt.Fprintf(tw, "kept versions\t%v\n", st.KeptVersions)
	if st.Reason != "" {
		fmt.Fprintf(tw, "reason\t%s\n", st.Reason)
	}
	if st.LastError != "" {
		fmt.Fprintf(tw, "last error\t%s\n", st.LastError)
	}
	return tw.Flush()
}

func (a *app) modelsRollback() *cobra.Command {
	return &cobra.Command{
		Use:   "rollback [VERSION]",
		Short: "Go back to a kept earlier fleet release (default: the one before the active)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := a.dial()
			if err != nil {
				return err
			}
			c := emberv1.NewUpdateServiceClient(conn)
			var version int64 = -1
			if len(args) == 1 {
				if version, err = strconv.ParseInt(args[0], 10, 64); err != nil || version < 0 {
					return usageError{fmt.Errorf("%q is not a release version", args[0])}
				}
			} else {
				st, err := c.Status(a.ctx, &emberv1.UpdateStatusRequest{})
				if err != nil {
					return err
				}
				version = 0
				for _, v := range st.KeptVersions {
					if v < st.ActiveVersion && v > version {
						version = v
					}
				}
			}
			st, err := c.Rollback(a.ctx, &emberv1.RollbackRequest{Version: version})
			if err != nil {
				return err
			}
			return a.printUpdate(st)
		},
	}
}
