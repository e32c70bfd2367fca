package ctl

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ember-edge/ember/sync/fleet"
)

// fleetKeys groups the key list commands: the in-band rotation and
// revocation of manifest signing keys under a root key devices pin
// (fleet.root_key). FORMAT.md in sync/fleet, "Key lists".
func (a *app) fleetKeys() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Sign and check key lists: the manifest keys a root key vouches for",
	}
	cmd.AddCommand(a.fleetKeysSign(), a.fleetKeysVerify())
	return cmd
}

func (a *app) fleetKeysSign() *cobra.Command {
	var rootKey, fleetName, out string
	var keys []string
	var version int64
	cmd := &cobra.Command{
		Use:   "sign --root-key FILE --fleet F --version N --keys FILE|BASE64 … --out FILE.json",
		Short: "Write a key list signed by the root key",
		Long: `Writes the list of keys that may sign the fleet's manifests, signed by
the root key. Devices whose fleet.root_key is its public key take it from
fleet/v1/F/keys (emberctl fleet publish FILE.json) and trust exactly these
keys from then on, instead of fleet.trusted_keys: a key left out is
revoked at once. --version must be greater than the last list's; a device
refuses an older or equal one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case rootKey == "":
				return usageError{errors.New("--root-key FILE is required")}
			case fleetName == "":
				return usageError{errors.New("--fleet is required")}
			case version < 1:
				return usageError{errors.New("--version N (≥ 1, above the last key list's) is required")}
			case len(keys) == 0:
				return usageError{errors.New("--keys is required: the public keys (files or base64) that may sign manifests")}
			case out == "":
				return usageError{errors.New("--out FILE.json is required")}
			}
			if err := fleet.CheckName(fleetName); err != nil {
				return usageError{fmt.Errorf("--fleet: %w", err)}
			}
			b, err := os.ReadFile(rootKey)
			if err != nil {
				return err
			}
			root, err := fleet.ParsePrivateKey(b)
			if err != nil {
				return fmt.Errorf("--root-key %s: %w", rootKey, err)
			}
			var pubs []ed25519.PublicKey
			for _, k := range keys {
				pub, err := fleet.LoadPublicKey(k, "")
				if err != nil {
					return fmt.Errorf("--keys %s: %w", k, err)
				}
				pubs = append(pubs, pub)
			}
			kl := fleet.NewKeyList(fleetName, version, pubs...)
			env, err := fleet.SignKeyList(kl, root)
			if err != nil {
				return err
			}
			if err := writeReplace(out, env); err != nil {
				return err
			}
			ids := make([]string, len(kl.Keys))
			for i, k := range kl.Keys {
				ids[i] = k.KeyID
			}
			rootID := fleet.KeyID(root.Public().(ed25519.PublicKey))
			if a.json() {
				return a.printJSON(map[string]any{"out": out, "fleet": fleetName, "version": version, "key_ids": ids, "root_key_id": rootID})
			}
			fmt.Fprintf(a.stdout, "signed key list version %d for fleet %s (keys %s) with root key %s: %s\n",
				version, fleetName, strings.Join(ids, ", "), rootID, out)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&rootKey, "root-key", "", "the root private key file (PEM, from keygen)")
	fl.StringVar(&fleetName, "fleet", "", "the fleet the key list is for")
	fl.Int64Var(&version, "version", 0, "the key list's version: above the last one's")
	fl.StringArrayVar(&keys, "keys", nil, "a public key (file or base64) that may sign manifests; repeatable")
	fl.StringVar(&out, "out", "", "signed key list to write (JSON)")
	return cmd
}

func (a *app) fleetKeysVerify() *cobra.Command {
	var rootKey, fleetName string
	cmd := &cobra.Command{
		Use:   "verify --root-key FILE|BASE64 --fleet F FILE.json",
		Short: "Check a key list as a device would, and show its keys",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if rootKey == "" || fleetName == "" {
				return usageError{errors.New("--root-key (the public root key devices pin) and --fleet are required")}
			}
			root, err := fleet.LoadPublicKey(rootKey, "")
			if err != nil {
				return fmt.Errorf("--root-key: %w", err)
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			v, err := fleet.VerifyKeyList(data, root, fleetName)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			ids := v.Ring().IDs()
			if a.json() {
				return a.printJSON(map[string]any{"fleet": v.List.Fleet, "version": v.List.Version, "key_ids": ids, "digest": v.Digest})
			}
			fmt.Fprintf(a.stdout, "%s: key list version %d for fleet %s, keys %s\n", args[0], v.List.Version, v.List.Fleet, strings.Join(ids, ", "))
			return nil
		},
	}
	cmd.Flags().StringVar(&rootKey, "root-key", "", "the root public key (file or base64)")
	cmd.Flags().StringVar(&fleetName, "fleet", "", "the fleet")
	return cmd
}
