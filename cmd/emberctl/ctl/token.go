package ctl

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	emberv1 "github.com/ember-edge/ember/protos/ember/v1"
)

func (a *app) authClient() (emberv1.AuthServiceClient, error) {
	conn, err := a.dial()
	if err != nil {
		return nil, err
	}
	return emberv1.NewAuthServiceClient(conn), nil
}

func (a *app) whoamiCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show who emberd takes you for, your role and what it lets you do",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.authClient()
			if err != nil {
				return err
			}
			me, err := c.WhoAmI(a.ctx, &emberv1.WhoAmIRequest{})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printProto(me)
			}
			tw := a.table()
			fmt.Fprintf(tw, "identity\t%s\n", me.Identity)
			fmt.Fprintf(tw, "kind\t%s\n", me.Kind)
			fmt.Fprintf(tw, "role\t%s\n", me.Role)
			fmt.Fprintf(tw, "principals\t%s\n", strings.Join(me.Principals, " "))
			fmt.Fprintf(tw, "permissions\t%s\n", strings.Join(me.Permissions, " "))
			return tw.Flush()
		},
	}
}

func (a *app) tokenCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Create, list and revoke API bearer tokens (admin)"}
	cmd.AddCommand(a.tokenCreate(), a.tokenList(), a.tokenRevoke())
	return cmd
}

func (a *app) tokenCreate() *cobra.Command {
	var role string
	var expires time.Duration
	cmd := &cobra.Command{
		Use:   "create NAME --role ROLE [--expires 720h]",
		Short: "Create a token and print it once: emberd keeps only its hash",
		Long: "Create a bearer token for TCP callers (emberctl --addr ... --token, or $EMBER_TOKEN).\n" +
			"The token is printed once on stdout and nothing else; emberd keeps only its hash.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if role == "" {
				return usageError{fmt.Errorf("--role is required: viewer, technician, operator or admin")}
			}
			if expires < 0 {
				return usageError{fmt.Errorf("--expires %s is negative", expires)}
			}
			c, err := a.authClient()
			if err != nil {
				return err
			}
			res, err := c.CreateToken(a.ctx, &emberv1.CreateTokenRequest{Name: args[0], Role: role,
				ExpiresInSeconds: int64(expires / time.Second)})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printProto(res)
			}
			_, err = fmt.Fprintln(a.stdout, res.Token)
			return err
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "viewer, technician, operator or admin")
	cmd.Flags().DurationVar(&expires, "expires", 0, "how long the token is valid (e.g. 720h); 0 means until revoked")
	return cmd
}

func (a *app) tokenList() *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List tokens, revoked and expired ones included",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.authClient()
			if err != nil {
				return err
			}
			res, err := c.ListTokens(a.ctx, &emberv1.ListTokensRequest{})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printProto(res)
			}
			tw := a.table()
			fmt.Fprintln(tw, "NAME\tROLE\tSTATE\tCREATED\tEXPIRES\tID\tCREATED BY")
			for _, t := range res.Tokens {
				exp := "never"
				if t.ExpiresAt != nil {
					exp = t.ExpiresAt.AsTime().Local().Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.Role, t.State,
					t.CreatedAt.AsTime().Local().Format(time.RFC3339), exp, t.Id, t.CreatedBy)
			}
			return tw.Flush()
		},
	}
}

func (a *app) tokenRevoke() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a token: calls presenting it are refused from now on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.authClient()
			if err != nil {
				return err
			}
			t, err := c.RevokeToken(a.ctx, &emberv1.RevokeTokenRequest{Name: args[0]})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printProto(t)
			}
			_, err = fmt.Fprintf(a.stdout, "revoked token %s (%s)\n", t.Name, t.Role)
			return err
		},
	}
}
