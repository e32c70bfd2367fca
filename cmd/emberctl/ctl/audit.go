package ctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
)

func (a *app) auditCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "List and verify the device's tamper-evident audit chain"}
	var after uint64
	var limit int32
	var action string
	ls := &cobra.Command{
		Use: "ls", Short: "List audit entries, oldest first", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := a.dial()
			if err != nil {
				return err
			}
			res, err := emberv1.NewAuditServiceClient(conn).List(a.ctx, &emberv1.ListAuditRequest{AfterIndex: after, Limit: limit, Action: action})
			if err != nil {
				return err
			}
			if a.json() {
				out := make([]map[string]any, 0, len(res.Entries))
				for _, e := range res.Entries {
					m := map[string]any{"index": e.Index, "prev": e.Prev, "boot": e.Boot, "action": e.Action, "actor": e.Actor,
						"ok": e.Ok, "seq": e.Seq, "at": tsOrNil(e.At.AsTime(), e.At != nil)}
					if e.Error != "" {
						m["error"] = e.Error
					}
					if e.DetailsJson != "" {
						m["details"] = json.RawMessage(e.DetailsJson)
					}
					out = append(out, m)
				}
				return a.printJSON(map[string]any{"first": res.First, "last": res.Last, "entries": out})
			}
			tw := a.table()
			fmt.Fprintln(tw, "INDEX\tTIME\tACTION\tACTOR\tOUTCOME\tDETAILS")
			for _, e := range res.Entries {
				when := "-"
				if e.At != nil {
					when = e.At.AsTime().Local().Format(time.RFC3339)
				}
				outcome := "ok"
				if !e.Ok {
					outcome = "error: " + e.Error
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Index, when, e.Action, e.Actor, outcome, e.DetailsJson)
			}
			return tw.Flush()
		},
	}
	ls.Flags().Uint64Var(&after, "after", 0, "list entries after this index")
	ls.Flags().Int32Var(&limit, "limit", 100, "at most this many entries")
	ls.Flags().StringVar(&action, "action", "", "only entries of this action (model.load, inference.chat, …)")
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Walk the chain and its signed checkpoints; exit 1 naming the first bad entry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := a.dial()
			if err != nil {
				return err
			}
			r, err := emberv1.NewAuditServiceClient(conn).Verify(a.ctx, &emberv1.VerifyAuditRequest{})
			if err != nil {
				return err
			}
			var firstBad any
			if r.HasFirstBad {
				firstBad = r.FirstBad
			}
			if a.json() {
				out := map[string]any{"ok": r.Ok, "entries": r.Entries, "first_bad": firstBad, "first": r.First, "last": r.Last,
					"checkpoints": r.Checkpoints, "bad_checkpoints": r.BadCheckpoints, "anchor": r.Anchor, "public_key": r.PublicKey,
					"write_failures": r.WriteFailures}
				if r.Reason != "" {
					out["reason"] = r.Reason
				}
				if r.LastWriteError != "" {
					out["last_write_error"] = r.LastWriteError
				}
				if err := a.printJSON(out); err != nil {
					return err
				}
			} else {
				tw := a.table()
				verdict := "ok"
				if !r.Ok {
					verdict = fmt.Sprintf("BROKEN at entry %d: %s", r.FirstBad, r.Reason)
				}
				fmt.Fprintf(tw, "chain\t%s\n", verdict)
				fmt.Fprintf(tw, "entries\t%d (%d to %d)\n", r.Entries, r.First, r.Last)
				fmt.Fprintf(tw, "checkpoints\t%d, %d not verifying; latest valid at %d\n", r.Checkpoints, r.BadCheckpoints, r.Anchor)
				fmt.Fprintf(tw, "device key\t%s\n", r.PublicKey)
				if r.WriteFailures > 0 {
					fmt.Fprintf(tw, "write failures\t%d since start; last: %s\n", r.WriteFailures, r.LastWriteError)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			if !r.Ok {
				return errors.New("the audit chain does not verify: " + r.Reason)
			}
			return nil
		},
	}
	cmd.AddCommand(ls, verify)
	return cmd
}
