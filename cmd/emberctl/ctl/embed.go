package ctl

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
)

func (a *app) embedCommand() *cobra.Command {
	var model string
	cmd := &cobra.Command{
		Use:   "embed [flags] TEXT...",
		Short: "Print an L2-normalised embedding vector for each TEXT",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("give at least one TEXT to embed")}
			}
			conn, err := a.dial()
			if err != nil {
				return err
			}
			resp, err := emberv1.NewInferenceServiceClient(conn).Embed(a.ctx, &emberv1.EmbedRequest{Model: model, Inputs: args})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printProto(resp)
			}
			fmt.Fprintf(a.stdout, "%s: %d inputs, %d dimensions, %d tokens\n", resp.Model, len(resp.Embeddings), resp.Dimensions, resp.PromptTokens)
			for i, e := range resp.Embeddings {
				fmt.Fprintf(a.stdout, "%d  %s\n", i, preview(e.Values, 8))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&model, "model", "m", "", "model name (default: the daemon's default model)")
	return cmd
}

func preview(v []float32, n int) string {
	var b strings.Builder
	b.WriteString("[")
	for i, x := range v {
		if i == n {
			fmt.Fprintf(&b, " … %d more", len(v)-n)
			break
		}
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%.4f", x)
	}
	b.WriteString("]")
	return b.String()
}

func (a *app) tokenizeCommand() *cobra.Command {
	var model string
	var noSpecial, parseSpecial bool
	cmd := &cobra.Command{
		Use:   "tokenize [flags] TEXT",
		Short: "Show how a model splits TEXT into tokens",
		RunE: func(cmd *cobra.Command, args []string) error {
			text, err := a.promptArg(args)
			if err != nil {
				return err
			}
			conn, err := a.dial()
			if err != nil {
				return err
			}
			resp, err := emberv1.NewInferenceServiceClient(conn).Tokenize(a.ctx, &emberv1.TokenizeRequest{
				Model: model, Text: text, AddSpecial: !noSpecial, ParseSpecial: parseSpecial,
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printProto(resp)
			}
			tw := a.table()
			fmt.Fprintln(tw, "ID\tPIECE")
			for _, t := range resp.Tokens {
				fmt.Fprintf(tw, "%d\t%q\n", t.Id, t.Piece)
			}
			tw.Flush()
			fmt.Fprintf(a.stdout, "%d tokens\n", len(resp.Tokens))
			return nil
		},
	}
	cmd.Flags().StringVarP(&model, "model", "m", "", "model name (default: the daemon's default model)")
	cmd.Flags().BoolVar(&noSpecial, "no-special", false, "do not add special tokens such as BOS")
	cmd.Flags().BoolVar(&parseSpecial, "parse-special", false, "read special-token text such as <|im_start|> as the token")
	return cmd
}
