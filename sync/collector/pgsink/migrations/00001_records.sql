-- The records the devices' uplinks deliver, once each, and one row per
-- device. sync/DESIGN.md ("The fleet database") describes every column
-- and how to partition ember_records by time.

-- +goose Up
CREATE TABLE ember_records (
    device_id   text        NOT NULL,
    outbox_id   text        NOT NULL,
    seq         bigint      NOT NULL,
    kind        text        NOT NULL,
    class       text        NOT NULL DEFAULT 'shared',
    priority    smallint    NOT NULL,
    pipeline    text,
    job_id      bigint,
    created_at  timestamptz NOT NULL,
    boot        bigint      NOT NULL,
    sha256      text        NOT NULL,
    fleet       text        NOT NULL,
    received_at timestamptz NOT NULL,
    data        jsonb       NOT NULL,
    PRIMARY KEY (device_id, outbox_id, seq)
);
CREATE INDEX ember_records_device_created ON ember_records (device_id, created_at);
CREATE INDEX ember_records_received ON ember_records (received_at);

CREATE TABLE ember_devices (
    device_id         text        PRIMARY KEY,
    fleet             text        NOT NULL,
    outbox_id         text,
    first_seen        timestamptz NOT NULL,
    last_seen         timestamptz NOT NULL,
    records           bigint      NOT NULL DEFAULT 0,
    last_telemetry    jsonb,
    last_telemetry_at timestamptz,
    active_version    bigint,
    update_phase      text,
    reported          jsonb,
    reported_at       timestamptz
);

-- +goose Down
DROP TABLE ember_devices;
DROP TABLE ember_records;
