// Package audit records what was done to the device: model loads,
// imports, pipeline reloads, job cancellations, fleet updates. Each
// action becomes an outbox record of kind "audit", so it is kept on the
// device and, unless classified local, synced upstream with the rest.
package audit

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/ember-edge/ember/daemon/store"
)

// priority of audit records: above routine results, below alarms.
const priority = 7

// Entry is the content of an audit record.
type Entry struct {
	Action string `json:"action"`
	// Actor says who acted: "uid 1000 (pid 4242) via unix socket",
	// "tcp 10.0.0.5:51234", "emberd" for the daemon itself, "fleet".
	Actor    string         `json:"actor"`
	DeviceID string         `json:"device_id"`
	Seq      uint64         `json:"seq"`
	At       time.Time      `json:"at"`
	OK       bool           `json:"ok"`
	Error    string         `json:"error,omitempty"`
	Details  map[string]any `json:"details,omitempty"`
}

// Log writes audit records.
type Log struct {
	st       *store.Store
	deviceID string
	log      *slog.Logger
}

// New returns an audit log writing to st.
func New(st *store.Store, deviceID string, log *slog.Logger) *Log {
	return &Log{st: st, deviceID: deviceID, log: log}
}

// Record writes one action. A failure to write is logged, never returned:
// auditing must not make an action fail after the fact.
func (l *Log) Record(ctx context.Context, action, actor string, err error, details map[string]any) {
	if l == nil {
		return
	}
	e := Entry{Action: action, Actor: actor, DeviceID: l.deviceID, OK: err == nil, Details: details}
	if err != nil {
		e.Error = err.Error()
	}
	_, aerr := l.st.Append(context.WithoutCancel(ctx), store.Record{Kind: store.KindAudit, DeviceID: l.deviceID, Priority: priority},
		func(r *store.Record) error {
			e.Seq, e.At = r.Seq, r.CreatedAt
			var err error
			r.Data, err = json.Marshal(e)
			return err
		}, time.Now())
	if aerr != nil {
		l.log.Error("audit record not written", "action", action, "err", aerr)
		return
	}
	l.log.Info("audit", "action", action, "actor", actor, "ok", e.OK)
}
