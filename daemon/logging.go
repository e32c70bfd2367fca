package daemon

import (
	"io"
	"log/slog"

	"github.com/ember-edge/ember/daemon/config"
)

// NewLogger builds the daemon's structured logger from the config.
func NewLogger(w io.Writer, c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
