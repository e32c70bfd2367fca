// Package ctl implements emberctl's commands. Each command file holds one
// command group; root.go holds what they share: the connection to emberd,
// output formats and error reporting.
package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/internal/buildinfo"
	"github.com/ember-edge/ember/internal/tlsconf"
)

// EnvSocket names the environment variable with the daemon's socket.
const EnvSocket = "EMBER_SOCKET"

// EnvToken names the environment variable with a bearer token, used with
// --addr when --token is absent.
const EnvToken = "EMBER_TOKEN"

// app is the state shared by all commands of one invocation.
type app struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer

	socket   string
	addr     string
	caFile   string
	certFile string
	keyFile  string
	token    string
	insecure bool
	output   string

	conn *grpc.ClientConn
}

// Main runs emberctl with args and returns the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if a.conn != nil {
		a.conn.Close()
	}
	if err != nil {
		fmt.Fprintln(stderr, "emberctl:", a.explain(err))
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "emberctl",
		Short:         "Talk to emberd, the ember inference appliance daemon",
		Version:       buildinfo.String(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if a.output != "text" && a.output != "json" {
				return usageError{fmt.Errorf("-o %q: want text or json", a.output)}
			}
			return nil
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.socket, "socket", "", "emberd's unix socket (default $"+EnvSocket+", else "+config.DefaultSocket()+")")
	pf.StringVar(&a.addr, "addr", "", "reach emberd over TCP at host:port instead of the socket")
	pf.StringVar(&a.caFile, "ca", "", "CA certificate that signed emberd's TLS certificate (with --addr)")
	pf.StringVar(&a.certFile, "cert", "", "client certificate to present to emberd (with --addr, for grpc.tls.client_ca)")
	pf.StringVar(&a.keyFile, "key", "", "private key of --cert")
	pf.StringVar(&a.token, "token", "", "bearer token (with --addr; default $"+EnvToken+"); never sent without TLS")
	pf.BoolVar(&a.insecure, "insecure", false, "use TCP without TLS (with --addr)")
	pf.StringVarP(&a.output, "output", "o", "text", "output format: text or json")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	root.AddCommand(
		a.generateCommand(),
		a.chatCommand(),
		a.embedCommand(),
		a.tokenizeCommand(),
		a.modelsCommand(),
		a.statusCommand(),
		a.jobsCommand(),
		a.outboxCommand(),
		a.pipelinesCommand(),
		a.mqttCommand(),
		a.fleetCommand(),
		a.hwCommand(),
		a.syncCommand(),
		a.updateCommand(),
		a.uplinkCommand(),
		a.auditCommand(),
		a.whoamiCommand(),
		a.tokenCommand(),
		a.collectorCommand(),
	)
	return root
}

// usageError marks errors in how emberctl was called (exit code 2).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// systemSocket is where the systemd service's emberd listens.
const systemSocket = "/run/ember/ember.sock"

// socketPath is where emberctl looks for the daemon: --socket, then
// $EMBER_SOCKET, then the default socket for this user, and for a user
// who has none, the system service's.
func (a *app) socketPath() string {
	if a.socket != "" {
		return a.socket
	}
	if env := os.Getenv(EnvSocket); env != "" {
		return env
	}
	def := config.DefaultSocket()
	if _, err := os.Stat(def); err != nil {
		if _, err := os.Stat(systemSocket); err == nil {
			return systemSocket
		}
	}
	return def
}

func (a *app) dial() (*grpc.ClientConn, error) {
	if a.conn != nil {
		return a.conn, nil
	}
	var target string
	var creds credentials.TransportCredentials
	var opts []grpc.DialOption
	token := a.token
	if token == "" {
		token = os.Getenv(EnvToken)
	}
	switch {
	case a.addr != "" && a.insecure:
		if a.token != "" {
			return nil, usageError{errors.New("--token is never sent without TLS, where anyone on the path could read it: drop --insecure")}
		}
		if a.certFile != "" {
			return nil, usageError{errors.New("--cert needs TLS: drop --insecure")}
		}
		target, creds = a.addr, insecure.NewCredentials()
	case a.addr != "":
		cfg, err := tlsconf.Client{CA: a.caFile, Cert: a.certFile, Key: a.keyFile,
			Keys: tlsconf.Keys{CA: "--ca", Cert: "--cert", Key: "--key"}}.Config()
		if err != nil {
			return nil, err
		}
		target, creds = a.addr, credentials.NewTLS(cfg)
		if token != "" {
			opts = append(opts, grpc.WithPerRPCCredentials(bearerToken(token)))
		}
	default:
		path, err := filepath.Abs(a.socketPath())
		if err != nil {
			return nil, err
		}
		target, creds = "unix://"+path, insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(target, append(opts, grpc.WithTransportCredentials(creds))...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", target, err)
	}
	a.conn = conn
	return conn, nil
}

// explain rewrites gRPC errors as sentences for a technician.
func (a *app) explain(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	switch st.Code() {
	case codes.Unavailable:
		where := a.socketPath()
		if a.addr != "" {
			where = a.addr
		}
		return fmt.Sprintf("cannot reach emberd at %s (%s); is it running? Start it with `make run` or `systemctl start emberd`, or point --socket or $%s at its socket",
			where, st.Message(), EnvSocket)
	case codes.Canceled:
		return "cancelled"
	case codes.ResourceExhausted:
		if strings.Contains(st.Message(), "larger than max") {
			return fmt.Sprintf("%s: %s (the limit is emberd's grpc.max_recv_msg_size)", codeName(st.Code()), st.Message())
		}
	}
	return fmt.Sprintf("%s: %s", codeName(st.Code()), st.Message())
}

func codeName(c codes.Code) string {
	switch c {
	case codes.InvalidArgument:
		return "invalid argument"
	case codes.NotFound:
		return "not found"
	case codes.FailedPrecondition:
		return "not ready"
	case codes.ResourceExhausted:
		return "busy (RESOURCE_EXHAUSTED)"
	case codes.PermissionDenied:
		return "PERMISSION_DENIED"
	case codes.Unauthenticated:
		return "UNAUTHENTICATED"
	case codes.AlreadyExists:
		return "already exists"
	}
	return c.String()
}

// bearerToken sends "authorization: Bearer <token>" with every call, and
// only over TLS.
type bearerToken string

func (t bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

func (bearerToken) RequireTransportSecurity() bool { return true }
