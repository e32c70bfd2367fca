package api

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ember-edge/ember/daemon/auth"
	"github.com/ember-edge/ember/daemon/engine"
	"github.com/ember-edge/ember/daemon/gguf"
	"github.com/ember-edge/ember/daemon/models"
	"github.com/ember-edge/ember/daemon/store"
)

// toStatus maps an error from the daemon's packages to a gRPC status whose
// code says what kind of problem it is and whose message says what to do.
func toStatus(log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Internal
	switch {
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, engine.ErrInvalidRequest), errors.Is(err, auth.ErrBadTokenName), errors.Is(err, auth.ErrUnknownRole):
		code = codes.InvalidArgument
	case errors.Is(err, engine.ErrQueueFull), errors.Is(err, engine.ErrInsufficientMemory), errors.Is(err, models.ErrNoSpace),
		errors.Is(err, store.ErrDiskFull), errors.Is(err, store.ErrFull), errors.Is(err, store.ErrBacklogFull):
		code = codes.ResourceExhausted
	case errors.Is(err, engine.ErrModelLoaded), errors.Is(err, models.ErrExists), errors.Is(err, store.ErrExists):
		code = codes.AlreadyExists
	case errors.Is(err, engine.ErrModelNotLoaded):
		code = codes.FailedPrecondition
	case errors.Is(err, engine.ErrUnloaded):
		code = codes.Unavailable
	case errors.Is(err, models.ErrUnknownModel), errors.Is(err, fs.ErrNotExist), errors.Is(err, store.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, gguf.ErrNotGGUF), errors.Is(err, gguf.ErrTruncated), errors.Is(err, gguf.ErrCorrupt),
		errors.Is(err, gguf.ErrUnsupportedVersion), errors.Is(err, gguf.ErrUnsupportedArchitecture):
		code = codes.InvalidArgument
	}
	if code == codes.Internal {
		log.Error("request failed", "err", err)
	}
	return status.Error(code, err.Error())
}
