-- Every device event, once: a hypertable partitioned by the time the system received it.
CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE events (
    received_at timestamptz NOT NULL,
    event_id    uuid        NOT NULL,
    site        text        NOT NULL,
    device_id   text        NOT NULL,
    kind        text        NOT NULL,
    device_ts   timestamptz NOT NULL,
    data        jsonb       NOT NULL DEFAULT '{}'
);
SELECT create_hypertable('events', by_range('received_at', INTERVAL '1 hour'));
CREATE INDEX events_device_idx ON events (device_id, received_at DESC);

-- Idempotency on event_id. A hypertable's unique keys must contain its partition column, and a
-- redelivered event is received at another time, so the ids live in their own table.
CREATE TABLE event_ids (
    event_id    uuid        PRIMARY KEY,
    received_at timestamptz NOT NULL
);
CREATE INDEX event_ids_received_idx ON event_ids USING brin (received_at);

-- Payloads that broke contract §1: the reason and at most the first 256 bytes.
CREATE TABLE dead_letters (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at  timestamptz NOT NULL,
    topic        text        NOT NULL,
    site         text,
    reason       text        NOT NULL,
    detail       text        NOT NULL,
    payload_head bytea       NOT NULL CHECK (octet_length(payload_head) <= 256)
);
CREATE INDEX dead_letters_received_idx ON dead_letters (received_at);

-- Each running service instance says it is alive here (readiness, self-watch).
CREATE TABLE service_heartbeats (
    service    text        NOT NULL,
    instance   text        NOT NULL,
    pid        integer     NOT NULL,
    host       text        NOT NULL,
    started_at timestamptz NOT NULL,
    seen_at    timestamptz NOT NULL,
    details    jsonb       NOT NULL DEFAULT '{}',
    PRIMARY KEY (service, instance)
);
