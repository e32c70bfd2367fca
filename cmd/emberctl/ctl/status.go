package ctl

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ember-edge/ember/hw"
	"github.com/ember-edge/ember/internal/bytesize"
	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
)

func (a *app) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the device, the daemon and the loaded models",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := a.dial()
			if err != nil {
				return err
			}
			info, err := emberv1.NewDeviceServiceClient(conn).Info(a.ctx, &emberv1.InfoRequest{})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printProto(info)
			}
			h := info.Host
			tw := a.table()
			fmt.Fprintf(tw, "device\t%s (%s)\n", info.DeviceId, h.GetHostname())
			fmt.Fprintf(tw, "emberd\t%s, commit %s, up %s\n", info.Version, info.Commit, info.Uptime.AsDuration().Round(time.Second))
			fmt.Fprintf(tw, "host\t%s %s/%s, %s\n", h.GetPlatform(), h.GetOs(), h.GetArch(), h.GetCpuModel())
			fmt.Fprintf(tw, "cpu\t%d physical / %d logical cores\n", h.GetPhysicalCores(), h.GetLogicalCores())
			fmt.Fprintf(tw, "memory\t%s available of %s\n", bytesize.Size(h.GetAvailableBytes()), bytesize.Size(h.GetMemoryBytes()))
			fmt.Fprintf(tw, "llama.cpp\t%s\n", info.LlamaLibDir)
			fmt.Fprintf(tw, "devices\t%s\n", strings.Join(info.ComputeDevices, ", "))
			fmt.Fprintf(tw, "state\t%s\n", info.StateDir)
			if len(info.LoadedModels) == 0 {
				fmt.Fprintf(tw, "models\tnone loaded\n")
			}
			if g := info.Governors; g != nil {
				thermal := g.Thermal
				if g.Celsius > 0 {
					thermal += fmt.Sprintf(" (%.1f°C)", g.Celsius)
				}
				if g.HeldBelowPriority > 0 {
					thermal += fmt.Sprintf(", holding jobs below priority %d", g.HeldBelowPriority)
				}
				fmt.Fprintf(tw, "thermal\t%s\n", thermal)
				disk := fmt.Sprintf("%s free", bytesize.Size(g.DiskFreeBytes))
				if g.DiskLow {
					disk += fmt.Sprintf(", LOW: refusing work below priority %d", g.RefusedBelowPriority)
				}
				fmt.Fprintf(tw, "disk\t%s\n", disk)
			}
			// Healthy components are counted; only troubled ones get a line.
			healthy := 0
			for _, c := range info.Components {
				if (c.Running || c.Done) && c.Restarts == 0 {
					healthy++
					continue
				}
				state := "running"
				switch {
				case c.Done:
					state = "done"
				case !c.Running:
					state = "waiting to restart"
				}
				fmt.Fprintf(tw, "component\t%s: %s, restarted %d times (last error: %s)\n", c.Name, state, c.Restarts, c.LastError)
			}
			if len(info.Components) > 0 {
				fmt.Fprintf(tw, "components\t%d of %d healthy\n", healthy, len(info.Components))
			}
			for _, m := range info.LoadedModels {
				fmt.Fprintf(tw, "model\t%s: ctx %d, %d threads, %d active, %d/%d queued, %d requests, %d tokens\n",
					m.Name, m.Context, m.Threads, m.Active, m.QueueDepth, m.QueueCapacity, m.RequestsTotal, m.TokensGeneratedTotal)
			}
			return tw.Flush()
		},
	}
}

func absPath(p string) (string, error) { return filepath.Abs(p) }

func (a *app) hwCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "hw",
		Short: "Show the hardware profile the running daemon detected, with its recommendations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := a.dial()
			if err != nil {
				return err
			}
			resp, err := emberv1.NewDeviceServiceClient(conn).Hardware(a.ctx, &emberv1.HardwareRequest{})
			if err != nil {
				return err
			}
			if a.json() {
				var v any
				if err := json.Unmarshal([]byte(resp.ProfileJson), &v); err != nil {
					return err
				}
				return a.printJSON(v)
			}
			var p hw.Profile
			if err := json.Unmarshal([]byte(resp.ProfileJson), &p); err != nil {
				return err
			}
			return hw.WriteText(a.stdout, &p)
		},
	}
}
