package ctl

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
)

// genFlags are the sampling flags generate and chat share. Flags left
// unset leave the daemon's defaults in place.
type genFlags struct {
	model         string
	maxTokens     int32
	seed          uint32
	temperature   float32
	topK          int32
	topP          float32
	minP          float32
	repeatPenalty float32
	stop          []string
	grammarFile   string
	ignoreEOS     bool
	verbose       bool
}

func (g *genFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&g.model, "model", "m", "", "model name (default: the daemon's default model)")
	f.Int32Var(&g.maxTokens, "max-tokens", 0, "most tokens to generate (default: the daemon's, 256)")
	f.Uint32Var(&g.seed, "seed", 0, "seed for reproducible sampling")
	f.Float32Var(&g.temperature, "temperature", 0, "sampling temperature; 0 is greedy (default 0.8)")
	f.Int32Var(&g.topK, "top-k", 0, "top-k sampling (default 40)")
	f.Float32Var(&g.topP, "top-p", 0, "top-p sampling (default 0.95)")
	f.Float32Var(&g.minP, "min-p", 0, "min-p sampling (default 0.05)")
	f.Float32Var(&g.repeatPenalty, "repeat-penalty", 0, "repeat penalty; 1 is off (default 1)")
	f.StringArrayVar(&g.stop, "stop", nil, "stop when this string appears (repeatable)")
	f.StringVar(&g.grammarFile, "grammar-file", "", "GBNF grammar file constraining the output")
	f.BoolVar(&g.ignoreEOS, "ignore-eos", false, "keep generating past the end-of-text token (for load tests)")
	f.BoolVarP(&g.verbose, "verbose", "v", false, "print timings to stderr")
}

func (g *genFlags) params(cmd *cobra.Command) (*emberv1.SamplingParams, error) {
	p := &emberv1.SamplingParams{MaxTokens: g.maxTokens, Stop: g.stop, IgnoreEos: g.ignoreEOS}
	f := cmd.Flags()
	if f.Changed("seed") {
		p.Seed = &g.seed
	}
	if f.Changed("temperature") {
		p.Temperature = &g.temperature
	}
	if f.Changed("top-k") {
		p.TopK = &g.topK
	}
	if f.Changed("top-p") {
		p.TopP = &g.topP
	}
	if f.Changed("min-p") {
		p.MinP = &g.minP
	}
	if f.Changed("repeat-penalty") {
		p.RepeatPenalty = &g.repeatPenalty
	}
	if g.grammarFile != "" {
		b, err := os.ReadFile(g.grammarFile)
		if err != nil {
			return nil, usageError{fmt.Errorf("--grammar-file: %w", err)}
		}
		p.Grammar = string(b)
	}
	return p, nil
}

func (a *app) generateCommand() *cobra.Command {
	var g genFlags
	cmd := &cobra.Command{
		Use:   "generate [flags] PROMPT",
		Short: "Stream a completion of PROMPT (\"-\" or nothing reads stdin)",
		Example: `  emberctl generate "The three laws of thermodynamics are"
  emberctl generate --max-tokens 32 --seed 7 --temperature 0.7 "Once upon a time"
  echo "Summarise: ..." | emberctl generate -o json -`,
		RunE: func(cmd *cobra.Command, args []string) error {
			prompt, err := a.promptArg(args)
			if err != nil {
				return err
			}
			params, err := g.params(cmd)
			if err != nil {
				return err
			}
			conn, err := a.dial()
			if err != nil {
				return err
			}
			stream, err := emberv1.NewInferenceServiceClient(conn).Generate(a.ctx,
				&emberv1.GenerateRequest{Model: g.model, Prompt: prompt, Params: params})
			if err != nil {
				return err
			}
			return a.printStream(stream, g.verbose)
		},
	}
	g.register(cmd)
	return cmd
}

func (a *app) promptArg(args []string) (string, error) {
	if len(args) == 0 || (len(args) == 1 && args[0] == "-") {
		b, err := io.ReadAll(a.stdin)
		if err != nil {
			return "", err
		}
		if len(b) == 0 {
			return "", usageError{errors.New("no prompt: give it as an argument or on stdin")}
		}
		return string(b), nil
	}
	return strings.Join(args, " "), nil
}

// printStream prints pieces as they arrive (text), or one JSON object at
// the end (-o json), and returns the completion.
func (a *app) printStream(stream grpc.ServerStreamingClient[emberv1.GenerateResponse], verbose bool) error {
	var text strings.Builder
	var done *emberv1.Completion
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			if text.Len() > 0 && !a.json() {
				fmt.Fprintln(a.stdout)
			}
			return err
		}
		if msg.Done != nil {
			done = msg.Done
			continue
		}
		text.WriteString(msg.Text)
		if !a.json() {
			fmt.Fprint(a.stdout, msg.Text)
		}
	}
	if a.json() {
		return a.printJSON(struct {
			Text       string `json:"text"`
			Completion any    `json:"completion"`
		}{text.String(), protoValue(done)})
	}
	fmt.Fprintln(a.stdout)
	if verbose && done != nil {
		fmt.Fprintf(a.stderr, "[%s: %d prompt + %d generated tokens, %s, first token %s, %.1f tokens/s, finish %s]\n",
			done.Model, done.PromptTokens, done.CompletionTokens, done.Duration.AsDuration().Round(1e6),
			done.TimeToFirstToken.AsDuration().Round(1e5), done.TokensPerSecond, finishName(done.FinishReason))
	}
	return nil
}

func finishName(r emberv1.FinishReason) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "FINISH_REASON_"))
}

func (a *app) chatCommand() *cobra.Command {
	var g genFlags
	var system string
	var showPrompt bool
	cmd := &cobra.Command{
		Use:   "chat [flags] [MESSAGE]",
		Short: "Chat with a model: one MESSAGE, or an interactive session",
		Long: `With MESSAGE, sends it and prints the reply. Without, reads one message per
line from stdin and keeps the conversation's history; /reset forgets it and
/exit (or end of input) quits.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			params, err := g.params(cmd)
			if err != nil {
				return err
			}
			conn, err := a.dial()
			if err != nil {
				return err
			}
			client := emberv1.NewInferenceServiceClient(conn)
			var history []*emberv1.ChatMessage
			if system != "" {
				history = append(history, &emberv1.ChatMessage{Role: "system", Content: system})
			}
			base := len(history)
			send := func(msg string) (string, error) {
				history = append(history, &emberv1.ChatMessage{Role: "user", Content: msg})
				stream, err := client.Chat(a.ctx, &emberv1.ChatRequest{Model: g.model, Messages: history, Params: params, ReturnPrompt: showPrompt})
				if err != nil {
					return "", err
				}
				reply, err := a.collectChat(stream, g.verbose, showPrompt)
				if err != nil {
					history = history[:len(history)-1]
					return "", err
				}
				history = append(history, &emberv1.ChatMessage{Role: "assistant", Content: reply})
				return reply, nil
			}
			if len(args) > 0 {
				_, err := send(strings.Join(args, " "))
				return err
			}
			interactive := isTerminal(a.stdin)
			in := bufio.NewScanner(a.stdin)
			in.Buffer(make([]byte, 64<<10), 1<<20)
			for {
				if interactive {
					fmt.Fprint(a.stderr, "you> ")
				}
				if !in.Scan() {
					return in.Err()
				}
				line := strings.TrimSpace(in.Text())
				switch line {
				case "":
					continue
				case "/exit", "/quit":
					return nil
				case "/reset":
					history = history[:base]
					fmt.Fprintln(a.stderr, "(history cleared)")
					continue
				}
				if _, err := send(line); err != nil {
					fmt.Fprintln(a.stderr, "emberctl:", a.explain(err))
				}
			}
		},
	}
	g.register(cmd)
	cmd.Flags().StringVar(&system, "system", "", "system message that opens the conversation")
	cmd.Flags().BoolVar(&showPrompt, "show-prompt", false, "print the prompt rendered by the chat template to stderr")
	return cmd
}

func (a *app) collectChat(stream grpc.ServerStreamingClient[emberv1.GenerateResponse], verbose, showPrompt bool) (string, error) {
	var text strings.Builder
	var done *emberv1.Completion
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
		if msg.Done != nil {
			done = msg.Done
			continue
		}
		text.WriteString(msg.Text)
		if !a.json() {
			fmt.Fprint(a.stdout, msg.Text)
		}
	}
	if a.json() {
		return text.String(), a.printJSON(struct {
			Text       string `json:"text"`
			Completion any    `json:"completion"`
		}{text.String(), protoValue(done)})
	}
	fmt.Fprintln(a.stdout)
	if done != nil && showPrompt {
		fmt.Fprintf(a.stderr, "[prompt]\n%s\n[/prompt]\n", done.Prompt)
	}
	if done != nil && verbose {
		fmt.Fprintf(a.stderr, "[%d prompt + %d generated tokens, %.1f tokens/s, finish %s]\n",
			done.PromptTokens, done.CompletionTokens, done.TokensPerSecond, finishName(done.FinishReason))
	}
	return text.String(), nil
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && termIsTerminal(f)
}
