package ctl

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ember-edge/ember/daemon/synth"
)

// modelsSynth writes a synthetic model locally; it needs no daemon.
func (a *app) modelsSynth() *cobra.Command {
	var out, preset string
	var seed uint64
	cmd := &cobra.Command{
		Use:   "synth --out FILE",
		Short: "Write a small llama model with random weights (for demos and tests)",
		Long: `Writes a llama-architecture GGUF file with random weights and a small real
English vocabulary. It loads and runs like any model but writes gibberish:
it is for trying emberd out where no real model can be downloaded, and for
tests. Presets: tiny (about 1 MB) and bench (SmolLM2-135M's shapes, ~220 MB).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError{fmt.Errorf("--out FILE is required")}
			}
			var spec synth.Spec
			switch preset {
			case "tiny":
				spec = synth.Tiny
			case "bench":
				spec = synth.Bench
			default:
				return usageError{fmt.Errorf("--preset %q: want tiny or bench", preset)}
			}
			if cmd.Flags().Changed("seed") {
				spec.Seed = seed
			}
			bar := newProgressBar(a.stderr, "synth")
			err := synth.Write(out, spec, func(done, total int64) { bar.update("writing", done, total) })
			bar.finish()
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(map[string]any{"path": out, "preset": preset, "parameters": spec.ParameterCount()})
			}
			fmt.Fprintf(a.stdout, "wrote %s: %s preset, %.1fM parameters, random weights (it writes gibberish)\n",
				out, preset, float64(spec.ParameterCount())/1e6)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write")
	cmd.Flags().StringVar(&preset, "preset", "tiny", "model shape: tiny or bench")
	cmd.Flags().Uint64Var(&seed, "seed", 0, "seed for the random weights (default: the preset's)")
	return cmd
}
