package ctl

import "github.com/spf13/cobra"

// modelsSynth is filled in once package synth lands.
func (a *app) modelsSynth() *cobra.Command {
	return &cobra.Command{Use: "synth", Hidden: true}
}
