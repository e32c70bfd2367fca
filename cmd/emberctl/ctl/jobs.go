package ctl

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/term"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ember-edge/ember/internal/bytesize"
	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
)

func (a *app) jobClient() (emberv1.JobServiceClient, error) {
	conn, err := a.dial()
	if err != nil {
		return nil, err
	}
	return emberv1.NewJobServiceClient(conn), nil
}

func stateName(s emberv1.JobState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "JOB_STATE_"))
}

func parseState(s string) (emberv1.JobState, error) {
	if s == "" {
		return emberv1.JobState_JOB_STATE_UNSPECIFIED, nil
	}
	v, ok := emberv1.JobState_value["JOB_STATE_"+strings.ToUpper(s)]
	if !ok {
		return 0, usageError{fmt.Errorf("--state %q: want queued, running, done, failed or cancelled", s)}
	}
	return emberv1.JobState(v), nil
}

func (a *app) jobsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "jobs", Short: "Submit, list, watch and cancel durable inference jobs"}
	cmd.AddCommand(a.jobsSubmit(), a.jobsGet(), a.jobsList(), a.jobsWatch(), a.jobsCancel())
	return cmd
}

func (a *app) printJobs(jobs []*emberv1.Job) error {
	tw := a.table()
	fmt.Fprintln(tw, "ID\tSTATE\tPIPELINE\tPRIORITY\tCREATED\tATTEMPTS\tRESULT\tERROR")
	for _, j := range jobs {
		res := "-"
		if j.ResultSeq != 0 {
			res = "#" + strconv.FormatUint(j.ResultSeq, 10)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%d\t%s\t%s\n", j.Id, stateName(j.State), j.Pipeline, j.Priority,
			j.CreatedAt.AsTime().Local().Format("2006-01-02 15:04:05"), j.Attempts, res, dash(truncate(j.Error, 60)))
	}
	return tw.Flush()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func (a *app) jobsSubmit() *cobra.Command {
	var g genFlags
	var format, schemaFile, requestID, replyTopic, system string
	var priority int32
	var wait bool
	cmd := &cobra.Command{
		Use:   "submit [flags] PROMPT",
		Short: "Queue a durable job; it runs even if emberd restarts meanwhile",
		RunE: func(cmd *cobra.Command, args []string) error {
			prompt, err := a.promptArg(args)
			if err != nil {
				return err
			}
			params, err := g.params(cmd)
			if err != nil {
				return err
			}
			req := &emberv1.SubmitJobRequest{Model: g.model, Prompt: prompt, System: system, Params: params,
				RequestId: requestID, Priority: priority, ReplyTopic: replyTopic, Output: &emberv1.JobOutput{Format: format}}
			if schemaFile != "" {
				b, err := os.ReadFile(schemaFile)
				if err != nil {
					return usageError{fmt.Errorf("--schema: %w", err)}
				}
				req.Output.SchemaJson = string(b)
			}
			c, err := a.jobClient()
			if err != nil {
				return err
			}
			var watch emberv1.JobService_WatchClient
			if wait {
				// Watch before submitting, so the end cannot be missed.
				if watch, err = c.Watch(a.ctx, &emberv1.WatchJobsRequest{}); err != nil {
					return err
				}
			}
			j, err := c.Submit(a.ctx, req)
			if err != nil {
				return err
			}
			if wait {
				for !terminal(j.State) {
					if j, err = nextOf(watch, j.Id); err != nil {
						return err
					}
				}
			}
			if a.json() {
				return a.printProto(j)
			}
			return a.printJobs([]*emberv1.Job{j})
		},
	}
	g.register(cmd)
	f := cmd.Flags()
	f.StringVar(&format, "format", "text", "output format: text or json")
	f.StringVar(&schemaFile, "schema", "", "JSON Schema file for --format json")
	f.StringVar(&requestID, "id", "", "request id: a second submit with it within the dedup window returns the first job")
	f.StringVar(&replyTopic, "reply-topic", "", "also publish the result on this MQTT topic")
	f.StringVar(&system, "system", "", "system message")
	f.Int32Var(&priority, "priority", 0, "priority 1-9 (default 6)")
	f.BoolVar(&wait, "wait", false, "wait until the job ends")
	return cmd
}

func terminal(s emberv1.JobState) bool {
	return s == emberv1.JobState_JOB_STATE_DONE || s == emberv1.JobState_JOB_STATE_FAILED || s == emberv1.JobState_JOB_STATE_CANCELLED
}

func nextOf(w emberv1.JobService_WatchClient, id uint64) (*emberv1.Job, error) {
	for {
		j, err := w.Recv()
		if err != nil {
			return nil, err
		}
		if j.Id == id {
			return j, nil
		}
	}
}

func parseID(s string) (uint64, error) {
	id, err := strconv.ParseUint(strings.TrimPrefix(s, "#"), 10, 64)
	if err != nil {
		return 0, usageError{fmt.Errorf("%q is not a job id", s)}
	}
	return id, nil
}

func (a *app) jobsGet() *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show one job",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			c, err := a.jobClient()
			if err != nil {
				return err
			}
			j, err := c.Get(a.ctx, &emberv1.GetJobRequest{Id: id})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printProto(j)
			}
			if err := a.printJobs([]*emberv1.Job{j}); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "\nsource   %s\nrequest  %s\n", j.Source, j.RequestJson)
			return nil
		},
	}
}

func (a *app) jobsList() *cobra.Command {
	var state, pipeline string
	var since time.Duration
	var limit int32
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List jobs, newest first",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := parseState(state)
			if err != nil {
				return err
			}
			req := &emberv1.ListJobsRequest{State: st, Pipeline: pipeline, Limit: limit}
			if since > 0 {
				req.Since = timestamppb.New(time.Now().Add(-since))
			}
			c, err := a.jobClient()
			if err != nil {
				return err
			}
			resp, err := c.List(a.ctx, req)
			if err != nil {
				return err
			}
			if a.json() {
				return a.printProto(resp)
			}
			return a.printJobs(resp.Jobs)
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "queued, running, done, failed or cancelled")
	cmd.Flags().StringVar(&pipeline, "pipeline", "", "only this pipeline's jobs")
	cmd.Flags().DurationVar(&since, "since", 0, "only jobs created within this long (e.g. 1h)")
	cmd.Flags().Int32Var(&limit, "limit", 50, "most jobs to list")
	return cmd
}

func (a *app) jobsWatch() *cobra.Command {
	var state, pipeline string
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Print jobs as their state changes, until interrupted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := parseState(state)
			if err != nil {
				return err
			}
			c, err := a.jobClient()
			if err != nil {
				return err
			}
			w, err := c.Watch(a.ctx, &emberv1.WatchJobsRequest{State: st, Pipeline: pipeline})
			if err != nil {
				return err
			}
			for {
				j, err := w.Recv()
				if err == io.EOF || a.ctx.Err() != nil {
					return nil
				}
				if err != nil {
					return err
				}
				if a.json() {
					b, _ := jsonLine.Marshal(j)
					fmt.Fprintln(a.stdout, string(b))
					continue
				}
				fmt.Fprintf(a.stdout, "%s  job %d  %-9s %s %s\n", j.UpdatedAt.AsTime().Local().Format("15:04:05.000"),
					j.Id, stateName(j.State), j.Pipeline, j.Error)
			}
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "only jobs entering this state")
	cmd.Flags().StringVar(&pipeline, "pipeline", "", "only this pipeline's jobs")
	return cmd
}

func (a *app) jobsCancel() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a queued or running job",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			c, err := a.jobClient()
			if err != nil {
				return err
			}
			j, err := c.Cancel(a.ctx, &emberv1.CancelJobRequest{Id: id})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printProto(j)
			}
			fmt.Fprintf(a.stdout, "job %d is %s\n", j.Id, stateName(j.State))
			return nil
		},
	}
}

func (a *app) outboxCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "outbox", Short: "Read results, dead letters and other records kept for upload"}
	var kind, pipeline string
	var after uint64
	var limit int32
	ls := &cobra.Command{
		Use: "ls", Aliases: []string{"list"}, Short: "List records in sequence order", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := a.dial()
			if err != nil {
				return err
			}
			resp, err := emberv1.NewOutboxServiceClient(conn).List(a.ctx, &emberv1.ListRecordsRequest{Kind: kind, Pipeline: pipeline, AfterSeq: after, Limit: limit})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printProto(resp)
			}
			tw := a.table()
			fmt.Fprintln(tw, "SEQ\tKIND\tPIPELINE\tJOB\tCREATED\tDATA")
			for _, r := range resp.Records {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", r.Seq, r.Kind, dash(r.Pipeline), r.JobId,
					r.CreatedAt.AsTime().Local().Format("2006-01-02 15:04:05"), truncate(r.DataJson, 80))
			}
			return tw.Flush()
		},
	}
	ls.Flags().StringVar(&kind, "kind", "", "result, deadletter, telemetry or audit")
	ls.Flags().StringVar(&pipeline, "pipeline", "", "only this pipeline's records")
	ls.Flags().Uint64Var(&after, "after", 0, "records after this sequence number")
	ls.Flags().Int32Var(&limit, "limit", 50, "most records to list")
	get := &cobra.Command{
		Use: "get SEQ", Short: "Show one record", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			seq, err := parseID(args[0])
			if err != nil {
				return err
			}
			conn, err := a.dial()
			if err != nil {
				return err
			}
			r, err := emberv1.NewOutboxServiceClient(conn).Get(a.ctx, &emberv1.GetRecordRequest{Seq: seq})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printProto(r)
			}
			fmt.Fprintf(a.stdout, "seq %d (%s, boot %d) %s %s\n%s\n", r.Seq, r.Kind, r.Boot, r.Pipeline,
				r.CreatedAt.AsTime().Local().Format(time.RFC3339), r.DataJson)
			return nil
		},
	}
	stats := &cobra.Command{
		Use: "stats", Short: "Counts and bytes of the outbox and the job queue", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := a.dial()
			if err != nil {
				return err
			}
			s, err := emberv1.NewOutboxServiceClient(conn).Stats(a.ctx, &emberv1.OutboxStatsRequest{})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printProto(s)
			}
			tw := a.table()
			fmt.Fprintf(tw, "records\t%d (%s), last seq %d\n", s.Records, bytesize.Size(s.Bytes), s.LastSeq)
			if s.Oldest != nil {
				fmt.Fprintf(tw, "oldest\t%s\n", s.Oldest.AsTime().Local().Format(time.RFC3339))
			}
			fmt.Fprintf(tw, "database\t%s file, %s free pages\n", bytesize.Size(s.DbFileBytes), bytesize.Size(s.DbFreeBytes))
			fmt.Fprintf(tw, "jobs\t%d running, %d done, %d failed\n", s.JobsRunning, s.JobsDone, s.JobsFailed)
			fmt.Fprintf(tw, "ingest\t%d messages, %d duplicates, %d coalesced, %d refused, %d dead letters\n",
				s.Ingested, s.Duplicates, s.Coalesced, s.Rejected, s.DeadLetters)
			for p, n := range s.Backlog {
				fmt.Fprintf(tw, "queued\t%s: %d\n", p, n)
			}
			return tw.Flush()
		},
	}
	cmd.AddCommand(ls, get, stats)
	return cmd
}

func (a *app) pipelinesCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "pipelines", Short: "List, show, validate and reload MQTT pipelines"}
	cmd.AddCommand(&cobra.Command{
		Use: "ls", Aliases: []string{"list"}, Short: "List the running pipelines", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := a.dial()
			if err != nil {
				return err
			}
			resp, err := emberv1.NewPipelineServiceClient(conn).List(a.ctx, &emberv1.ListPipelinesRequest{})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printProto(resp)
			}
			tw := a.table()
			fmt.Fprintln(tw, "NAME\tMATCH\tDECODE\tMODEL\tOUTPUT\tPRIORITY\tCLASS\tQUEUED")
			for _, p := range resp.Pipelines {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\n", p.Name, p.Match, p.Decode, dash(p.Model), p.OutputFormat, p.Priority, p.Classification, p.Queued)
			}
			return tw.Flush()
		},
	}, &cobra.Command{
		Use: "get NAME", Short: "Show a pipeline's definition (and grammar, for json output)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := a.dial()
			if err != nil {
				return err
			}
			p, err := emberv1.NewPipelineServiceClient(conn).Get(a.ctx, &emberv1.GetPipelineRequest{Name: args[0]})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printProto(p)
			}
			fmt.Fprint(a.stdout, p.DefinitionYaml)
			if p.Grammar != "" {
				fmt.Fprintf(a.stdout, "\n# grammar constraining the output:\n%s", p.Grammar)
			}
			return nil
		},
	}, &cobra.Command{
		Use: "validate FILE", Short: "Check pipeline definitions (YAML: one, a list, or a config file's pipelines key)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := os.ReadFile(args[0])
			if err != nil {
				return usageError{err}
			}
			conn, err := a.dial()
			if err != nil {
				return err
			}
			resp, err := emberv1.NewPipelineServiceClient(conn).Validate(a.ctx, &emberv1.ValidatePipelineRequest{Yaml: string(b)})
			if err != nil {
				return err
			}
			if a.json() {
				if err := a.printProto(resp); err != nil {
					return err
				}
			} else if resp.Valid {
				fmt.Fprintf(a.stdout, "%d pipeline(s) valid\n", len(resp.Pipelines))
			} else {
				for _, p := range resp.Problems {
					fmt.Fprintln(a.stdout, p)
				}
			}
			if !resp.Valid {
				return errors.New("the definitions have problems")
			}
			return nil
		},
	}, &cobra.Command{
		Use: "reload", Short: "Reread the pipelines from the config file (like SIGHUP)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := a.dial()
			if err != nil {
				return err
			}
			resp, err := emberv1.NewPipelineServiceClient(conn).Reload(a.ctx, &emberv1.ReloadPipelinesRequest{})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printProto(resp)
			}
			fmt.Fprintf(a.stdout, "reloaded: %s\n", strings.Join(resp.Pipelines, ", "))
			return nil
		},
	})
	return cmd
}

// mqttCommand holds local MQTT helpers.
func (a *app) mqttCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "mqtt", Short: "MQTT helpers"}
	cmd.AddCommand(&cobra.Command{
		Use:   "passwd",
		Short: "Hash a password for mqtt.embedded.users[].password_hash (reads it from stdin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var pw []byte
			if f, ok := a.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				fmt.Fprint(a.stderr, "password: ")
				b, err := term.ReadPassword(int(f.Fd()))
				fmt.Fprintln(a.stderr)
				if err != nil {
					return err
				}
				pw = b
			} else {
				b, err := io.ReadAll(a.stdin)
				if err != nil {
					return err
				}
				pw = []byte(strings.TrimRight(string(b), "\r\n"))
			}
			if len(pw) == 0 {
				return usageError{errors.New("empty password")}
			}
			h, err := bcrypt.GenerateFromPassword(pw, bcrypt.DefaultCost)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, string(h))
			return nil
		},
	})
	return cmd
}
