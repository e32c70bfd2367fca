// Package pgsink stores the collector's batches in PostgreSQL (pgx):
// ember_records, one row per record, unique by (device_id, outbox_id,
// seq), and ember_devices, one row per device. The schema is made by
// versioned migrations embedded in the binary (goose).
package pgsink

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/ember-edge/ember/sync/collector"
	"github.com/ember-edge/ember/sync/uplink"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Sink is a collector.Sink over a pgx pool.
type Sink struct {
	pool *pgxpool.Pool
}

// Open connects to url (a postgres:// URL or key=value string), brings
// the schema up to date (under a Postgres advisory lock, so collectors
// starting together migrate once) and returns the sink.
func Open(ctx context.Context, url string) (*Sink, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("pgsink: %w", err)
	}
	if err := Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return &Sink{pool: pool}, nil
}

// Migrate applies the embedded migrations not yet applied.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("pgsink: migrate: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, mustSub(migrations, "migrations"), goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("pgsink: migrate: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("pgsink: migrate: %w", err)
	}
	return nil
}

// Pool returns the sink's pool (for queries).
func (s *Sink) Pool() *pgxpool.Pool { return s.pool }

// Close closes the pool.
func (s *Sink) Close() { s.pool.Close() }

var recordColumns = []string{"device_id", "outbox_id", "seq", "kind", "priority", "pipeline", "job_id",
	"created_at", "boot", "sha256", "fleet", "received_at", "data"}

// Store writes b in one transaction: the records by COPY into a
// temporary table, then INSERT … ON CONFLICT DO NOTHING in key order
// (so that concurrent collectors inserting the same duplicates take
// their locks in one order), then the devices.
func (s *Sink) Store(ctx context.Context, b collector.Batch) error {
	if len(b.Deliveries) == 0 && len(b.Reports) == 0 {
		return nil
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The collector confirms to devices what this commit stored:
		// the commit must be durable when it returns, whatever the
		// server's default (sync/DESIGN.md, "The fleet database").
		if _, err := tx.Exec(ctx, "SET LOCAL synchronous_commit = on"); err != nil {
			return fmt.Errorf("pgsink: %w", err)
		}
		if len(b.Deliveries) > 0 {
			if err := storeRecords(ctx, tx, b.Deliveries); err != nil {
				return err
			}
		}
		return storeDevices(ctx, tx, b)
	})
}

func storeRecords(ctx context.Context, tx pgx.Tx, ds []collector.Delivery) error {
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS ember_records_in
		(LIKE ember_records INCLUDING DEFAULTS) ON COMMIT DELETE ROWS`); err != nil {
		return fmt.Errorf("pgsink: temp table: %w", err)
	}
	var rows [][]any
	for _, d := range ds {
		e := d.Envelope
		for _, r := range e.Records {
			var pipeline, job any
			if r.Pipeline != "" {
				pipeline = r.Pipeline
			}
			if r.JobID != 0 {
				job = int64(r.JobID)
			}
			rows = append(rows, []any{e.DeviceID, e.OutboxID, int64(r.Seq), r.Kind, int16(r.Priority), pipeline, job,
				r.CreatedAt, int64(r.Boot), r.SHA256, e.Fleet, d.ReceivedAt, string(r.Data)})
		}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ember_records_in"}, recordColumns, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("pgsink: copy: %w", err)
	}
	cols := strings.Join(recordColumns, ", ")
	if _, err := tx.Exec(ctx, `INSERT INTO ember_records (`+cols+`) SELECT `+cols+` FROM ember_records_in
		ORDER BY device_id, outbox_id, seq ON CONFLICT DO NOTHING`); err != nil {
		return fmt.Errorf("pgsink: insert: %w", err)
	}
	return nil
}

// device is one ember_devices row's update from a batch.
type device struct {
	id, fleet, outbox string
	seen              time.Time
	records           int64
	telemetry         json.RawMessage
	telemetryAt       time.Time
	reported          json.RawMessage
	reportedAt        time.Time
	version           *int64
	phase             *string
}

func storeDevices(ctx context.Context, tx pgx.Tx, b collector.Batch) error {
	devs := map[string]*device{}
	get := func(id string) *device {
		d := devs[id]
		if d == nil {
			d = &device{id: id}
			devs[id] = d
		}
		return d
	}
	for _, dl := range b.Deliveries {
		e := dl.Envelope
		d := get(e.DeviceID)
		d.fleet, d.outbox = e.Fleet, e.OutboxID
		d.seen = later(d.seen, dl.ReceivedAt)
		d.records += int64(len(e.Records))
		if e.Kind == uplink.KindTelemetry {
			last := e.Records[len(e.Records)-1]
			if !last.CreatedAt.Before(d.telemetryAt) {
				d.telemetry, d.telemetryAt = last.Data, last.CreatedAt
			}
		}
	}
	for _, r := range b.Reports {
		var rep struct {
			Fleet         string `json:"fleet"`
			Phase         string `json:"phase"`
			ActiveVersion int64  `json:"active_version"`
		}
		if json.Unmarshal(r.Payload, &rep) != nil {
			continue // not a report; nothing to keep
		}
		d := get(r.DeviceID)
		if d.fleet == "" {
			d.fleet = rep.Fleet
		}
		d.seen = later(d.seen, r.ReceivedAt)
		if !r.ReceivedAt.Before(d.reportedAt) {
			d.reported, d.reportedAt = r.Payload, r.ReceivedAt
			d.version, d.phase = &rep.ActiveVersion, &rep.Phase
		}
	}
	ids := make([]string, 0, len(devs))
	for id := range devs {
		ids = append(ids, id)
	}
	slices.Sort(ids) // one lock order for every collector
	for _, id := range ids {
		d := devs[id]
		var tel, telAt, rep, repAt, outbox any
		if d.telemetry != nil {
			tel, telAt = string(d.telemetry), d.telemetryAt
		}
		if d.reported != nil {
			rep, repAt = string(d.reported), d.reportedAt
		}
		if d.outbox != "" {
			outbox = d.outbox
		}
		if _, err := tx.Exec(ctx, `INSERT INTO ember_devices AS d (device_id, fleet, outbox_id, first_seen, last_seen, records,
				last_telemetry, last_telemetry_at, active_version, update_phase, reported, reported_at)
			VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $9, $10, $11)
			ON CONFLICT (device_id) DO UPDATE SET
				fleet = COALESCE(NULLIF(EXCLUDED.fleet, ''), d.fleet),
				outbox_id = COALESCE(EXCLUDED.outbox_id, d.outbox_id),
				last_seen = GREATEST(d.last_seen, EXCLUDED.last_seen),
				records = d.records + EXCLUDED.records,
				last_telemetry = CASE WHEN EXCLUDED.last_telemetry_at >= d.last_telemetry_at OR d.last_telemetry_at IS NULL
					THEN COALESCE(EXCLUDED.last_telemetry, d.last_telemetry) ELSE d.last_telemetry END,
				last_telemetry_at = GREATEST(d.last_telemetry_at, EXCLUDED.last_telemetry_at),
				active_version = CASE WHEN EXCLUDED.reported_at >= d.reported_at OR d.reported_at IS NULL
					THEN COALESCE(EXCLUDED.active_version, d.active_version) ELSE d.active_version END,
				update_phase = CASE WHEN EXCLUDED.reported_at >= d.reported_at OR d.reported_at IS NULL
					THEN COALESCE(EXCLUDED.update_phase, d.update_phase) ELSE d.update_phase END,
				reported = CASE WHEN EXCLUDED.reported_at >= d.reported_at OR d.reported_at IS NULL
					THEN COALESCE(EXCLUDED.reported, d.reported) ELSE d.reported END,
				reported_at = GREATEST(d.reported_at, EXCLUDED.reported_at)`,
			d.id, d.fleet, outbox, d.seen, d.records, tel, telAt, d.version, d.phase, rep, repAt); err != nil {
			return fmt.Errorf("pgsink: device %q: %w", d.id, err)
		}
	}
	return nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
