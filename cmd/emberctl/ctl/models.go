package ctl

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ember-edge/ember/internal/bytesize"
	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
)

func (a *app) modelsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "models",
		Short: "List, inspect, load, unload, import and make models",
	}
	cmd.AddCommand(a.modelsList(), a.modelsInspect(), a.modelsLoad(), a.modelsUnload(), a.modelsImport(), a.modelsSynth(), a.modelsRollback())
	return cmd
}

func (a *app) modelClient() (emberv1.ModelServiceClient, error) {
	conn, err := a.dial()
	if err != nil {
		return nil, err
	}
	return emberv1.NewModelServiceClient(conn), nil
}

func (a *app) modelsList() *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the models this device has",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.modelClient()
			if err != nil {
				return err
			}
			resp, err := c.List(a.ctx, &emberv1.ListModelsRequest{})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printProto(resp)
			}
			tw := a.table()
			fmt.Fprintln(tw, "NAME\tSTATE\tSIZE\tLICENSE\tVERSION\tSOURCE\tSHA256")
			for _, m := range resp.Models {
				state := "available"
				if m.Loaded {
					state = fmt.Sprintf("loaded (ctx %d)", m.Context)
				}
				name := m.Name
				if m.Default {
					name += " *"
				}
				sum := m.Sha256
				if len(sum) > 12 {
					sum = sum[:12]
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, state, bytesize.Size(m.SizeBytes),
					dash(m.License), dash(m.Version), m.Source, dash(sum))
			}
			return tw.Flush()
		},
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (a *app) modelsInspect() *cobra.Command {
	var path string
	var all bool
	cmd := &cobra.Command{
		Use:   "inspect NAME | --path FILE",
		Short: "Show a model's GGUF metadata (validated, without loading it)",
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &emberv1.InspectModelRequest{}
			switch {
			case path != "" && len(args) == 0:
				req.Target = &emberv1.InspectModelRequest_Path{Path: path}
			case path == "" && len(args) == 1:
				req.Target = &emberv1.InspectModelRequest_Name{Name: args[0]}
			default:
				return usageError{errors.New("give a model NAME or --path FILE")}
			}
			c, err := a.modelClient()
			if err != nil {
				return err
			}
			resp, err := c.Inspect(a.ctx, req)
			if err != nil {
				return err
			}
			if a.json() {
				return a.printProto(resp.Metadata)
			}
			md := resp.Metadata
			tw := a.table()
			rows := [][2]string{
				{"architecture", md.Architecture}, {"name", md.Name}, {"license", md.License},
				{"file type", md.FileType}, {"quantization", md.Quantization},
				{"parameters", fmt.Sprintf("%d (%.1fM)", md.ParameterCount, float64(md.ParameterCount)/1e6)},
				{"context length", fmt.Sprint(md.ContextLength)}, {"embedding length", fmt.Sprint(md.EmbeddingLength)},
				{"layers", fmt.Sprint(md.BlockCount)}, {"heads", fmt.Sprintf("%d (%d KV)", md.HeadCount, md.HeadCountKv)},
				{"vocabulary", fmt.Sprintf("%d tokens (%s)", md.VocabSize, md.TokenizerModel)},
				{"tensors", fmt.Sprintf("%d, %s", md.TensorCount, bytesize.Size(md.TensorBytes))},
				{"file", fmt.Sprintf("GGUF v%d, %s", md.GgufVersion, bytesize.Size(md.FileBytes))},
				{"chat template", templateSummary(md.ChatTemplate)},
			}
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\n", r[0], dash(r[1]))
			}
			if all {
				keys := make([]string, 0, len(md.Kv))
				for k := range md.Kv {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				fmt.Fprintln(tw, "\nmetadata\t")
				for _, k := range keys {
					fmt.Fprintf(tw, "  %s\t%s\n", k, md.Kv[k])
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&path, "path", "", "inspect a GGUF file on the device instead of a known model")
	cmd.Flags().BoolVarP(&all, "all", "a", false, "also list every metadata key")
	return cmd
}

func templateSummary(t string) string {
	if t == "" {
		return "none (emberd uses ChatML)"
	}
	first, _, _ := strings.Cut(t, "\n")
	if len(first) > 60 {
		first = first[:60] + "…"
	}
	return fmt.Sprintf("%d bytes: %s", len(t), first)
}

func (a *app) modelsLoad() *cobra.Command {
	var ctxLen uint32
	var threads int32
	cmd := &cobra.Command{
		Use:   "load NAME",
		Short: "Load a model so it can serve requests",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.modelClient()
			if err != nil {
				return err
			}
			resp, err := c.Load(a.ctx, &emberv1.LoadModelRequest{Name: args[0], Context: ctxLen, Threads: threads})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printProto(resp.Model)
			}
			fmt.Fprintf(a.stdout, "loaded %s (context %d, %d threads)\n", resp.Model.Name, resp.Model.Context, resp.Model.Threads)
			return nil
		},
	}
	cmd.Flags().Uint32Var(&ctxLen, "context", 0, "context length in tokens (default: derived)")
	cmd.Flags().Int32Var(&threads, "threads", 0, "threads (default: physical cores)")
	return cmd
}

func (a *app) modelsUnload() *cobra.Command {
	return &cobra.Command{
		Use:   "unload NAME",
		Short: "Unload a model and free its memory",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.modelClient()
			if err != nil {
				return err
			}
			if _, err := c.Unload(a.ctx, &emberv1.UnloadModelRequest{Name: args[0]}); err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(map[string]string{"unloaded": args[0]})
			}
			fmt.Fprintf(a.stdout, "unloaded %s\n", args[0])
			return nil
		},
	}
}

func (a *app) modelsImport() *cobra.Command {
	var name string
	var replace bool
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Copy a GGUF file on the device into the model store",
		Long: `Validates FILE as GGUF, copies it into the state dir's model store while
computing its sha256, and registers it. FILE is read by emberd, so it is a
path on the device.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := absPath(args[0])
			if err != nil {
				return err
			}
			c, err := a.modelClient()
			if err != nil {
				return err
			}
			stream, err := c.Import(a.ctx, &emberv1.ImportModelRequest{Path: path, Name: name, Replace: replace})
			if err != nil {
				return err
			}
			bar := newProgressBar(a.stderr, "import")
			defer bar.finish()
			for {
				msg, err := stream.Recv()
				if err == io.EOF {
					return errors.New("import ended without a result")
				}
				if err != nil {
					return err
				}
				if p := msg.GetProgress(); p != nil {
					bar.update(p.Phase, p.BytesDone, p.BytesTotal)
					continue
				}
				m := msg.GetModel()
				bar.finish()
				bar.shown = false
				if a.json() {
					return a.printProto(m)
				}
				fmt.Fprintf(a.stdout, "imported %s (%s, sha256 %s)\n", m.Name, bytesize.Size(m.SizeBytes), m.Sha256)
				return nil
			}
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "name to register (default: from the file name)")
	cmd.Flags().BoolVar(&replace, "replace", false, "replace a stored model of the same name")
	return cmd
}
