package daemon

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/daemon/gguf"
	"github.com/ember-edge/ember/daemon/llamacpp"
	"github.com/ember-edge/ember/daemon/pipeline"
)

// Check goes beyond config validation to the files the config names: the
// llama.cpp libraries, each model (validated as GGUF, without loading it),
// TLS files and the state dir. It returns every problem found.
func Check(cfg *config.Config) []error {
	var errs []error
	if _, err := llamacpp.Resolve(cfg.Llama.LibDir); err != nil {
		errs = append(errs, fmt.Errorf("llama.lib_dir: %w", err))
	}
	for i, m := range cfg.Models {
		if _, err := gguf.Open(m.Path); err != nil {
			errs = append(errs, fmt.Errorf("models[%d] %q: %w", i, m.Name, err))
		}
	}
	for key, path := range map[string]string{
		"grpc.tls.cert": cfg.GRPC.TLS.Cert, "grpc.tls.key": cfg.GRPC.TLS.Key, "grpc.tls.client_ca": cfg.GRPC.TLS.ClientCA,
	} {
		if path == "" {
			continue
		}
		if f, err := os.Open(path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		} else {
			f.Close()
		}
	}
	if _, err := pipeline.CompileAll(cfg.Pipelines, cfg.DeviceID); err != nil {
		errs = append(errs, fmt.Errorf("pipelines: %w", err))
	}
	if err := checkWritable(cfg.StateDir); err != nil {
		errs = append(errs, fmt.Errorf("state_dir: %w", err))
	}
	return errs
}

// checkWritable reports whether dir, or the nearest parent that exists if
// dir does not yet, accepts new files.
func checkWritable(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%s is not a directory", d)
			}
			f, err := os.CreateTemp(d, ".ember-check-*")
			if err != nil {
				return fmt.Errorf("cannot create files in %s: %w", d, err)
			}
			f.Close()
			os.Remove(f.Name())
			return nil
		}
		if parent := filepath.Dir(d); parent == d {
			return err
		}
	}
}
