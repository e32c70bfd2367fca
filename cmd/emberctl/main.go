// Command emberctl is the command-line client for emberd: generation and
// chat, embeddings, model management and device status. It talks to the
// daemon over gRPC on its unix socket (--socket, $EMBER_SOCKET, else the
// default) and prints for humans, or JSON with -o json.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ember-edge/ember/cmd/emberctl/ctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := ctl.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
