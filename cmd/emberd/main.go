// Command emberd is ember's inference appliance daemon.
//
//	emberd [--config FILE]                 run the daemon
//	emberd check-config [--config FILE]    validate the config and the files it names
//	emberd hw [--config FILE] [-o json]    print the detected hardware profile
//	emberd version
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ember-edge/ember/daemon"
	"github.com/ember-edge/ember/daemon/config"
	_ "github.com/ember-edge/ember/daemon/libffi" // must initialise before the llama.cpp binding
	"github.com/ember-edge/ember/daemon/llamacpp"
	"github.com/ember-edge/ember/hw"
	"github.com/ember-edge/ember/internal/buildinfo"
)

// Exit codes: 1 for a failure while running, 2 for bad usage or a config
// that check-config finds invalid, and 78 (EX_CONFIG, sysexits.h) when the
// daemon cannot start on its config: the systemd unit does not restart on
// 78, since retrying cannot fix a config.
const (
	exitFailure = 1
	exitUsage   = 2
	exitConfig  = 78
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cmd := ""
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("emberd", flag.ContinueOnError)
	cfgPath := fs.String("config", config.DefaultPath, "config file")
	output := fs.String("o", "text", "output format for hw: text or json")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if cmd == "" && fs.NArg() > 0 {
		cmd = fs.Arg(0) // emberd --config FILE check-config
	}
	explicitConfig := false
	fs.Visit(func(f *flag.Flag) { explicitConfig = explicitConfig || f.Name == "config" })
	if *showVersion || cmd == "version" {
		fmt.Println("emberd", buildinfo.String())
		return 0
	}
	switch cmd {
	case "":
		return serve(*cfgPath)
	case "check-config":
		return checkConfig(*cfgPath)
	case "hw":
		return printHardware(*cfgPath, explicitConfig, *output)
	default:
		fmt.Fprintf(os.Stderr, "emberd: unknown command %q (want check-config, hw or version)\n", cmd)
		return exitUsage
	}
}

func serve(path string) int {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "emberd:", err)
		return exitConfig
	}
	log := daemon.NewLogger(os.Stderr, cfg.Log)
	for _, w := range cfg.Warnings() {
		log.Warn("config", "warning", w)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reload := make(chan struct{})
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
	}()
	if err := daemon.Run(ctx, cfg, daemon.Options{ConfigPath: path, Reload: reload}, log); err != nil {
		log.Error("emberd failed", "err", err)
		return exitFailure
	}
	return 0
}

func checkConfig(path string) int {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitUsage
	}
	if errs := daemon.Check(cfg); len(errs) > 0 {
		fmt.Fprintf(os.Stderr, "config %s is valid, but:\n%v\n", path, errors.Join(errs...))
		return exitUsage
	}
	fmt.Printf("config %s is valid\n", path)
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(os.Stderr, "warning: %s\n", w)
	}
	if cfg.GRPC.Socket != "" {
		fmt.Printf("  socket: %s\n", cfg.GRPC.Socket)
	}
	if cfg.GRPC.TCP != "" {
		fmt.Printf("  tcp:    %s\n", cfg.GRPC.TCP)
	}
	fmt.Printf("  state:  %s\n", cfg.StateDir)
	for _, m := range cfg.Models {
		fmt.Printf("  model:  %s (%s)\n", m.Name, m.Path)
	}
	return 0
}

// printHardware prints the hardware profile without starting the daemon.
// The config, when one is named or the default exists, supplies the state
// and library dirs; HOST_PROC, HOST_SYS and HOST_ETC point detection at
// another root.
func printHardware(path string, explicit bool, output string) int {
	opts := hw.Options{}
	libDir := ""
	if cfg, err := config.Load(path); err == nil {
		opts.StateDir, libDir = cfg.StateDir, cfg.Llama.LibDir
	} else if explicit || !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintln(os.Stderr, "emberd:", err)
		return exitUsage
	}
	// Which ggml variants and GPU backends are installed shapes the
	// recommendations; without libraries there are simply none.
	opts.LibDir, _ = llamacpp.Resolve(libDir)
	p, err := hw.Detect(context.Background(), opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "emberd: detect hardware:", err)
		return exitFailure
	}
	switch output {
	case "json":
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(p)
	case "text":
		err = hw.WriteText(os.Stdout, p)
	default:
		fmt.Fprintf(os.Stderr, "emberd: -o %q: want text or json\n", output)
		return exitUsage
	}
	if err != nil {
		return exitFailure
	}
	return 0
}
