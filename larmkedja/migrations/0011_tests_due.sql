-- Alarms that are proven to work (issue 20): a heartbeat shows the base unit is online, not
-- that the pendant's radio and battery work. A device with no alarm and no test for
-- LARM_TEST_DUE_DAYS is due a test call (`device.test_due`); a test an operator asked for
-- that does not arrive in time becomes a technical alarm (`device.test_failed`).

-- The last safety alarm (a test included) from the device, written by ingest with the alarm.
ALTER TABLE devices ADD COLUMN last_alarm_at timestamptz;

CREATE TABLE test_requests (
    request_id   uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    device_id    text        NOT NULL,
    site         text        NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    requested_by text        NOT NULL,
    due_at       timestamptz NOT NULL,
    arrived_at   timestamptz,
    failed_at    timestamptz
);
CREATE UNIQUE INDEX test_requests_one_open ON test_requests (device_id)
    WHERE arrived_at IS NULL AND failed_at IS NULL;
CREATE INDEX test_requests_due ON test_requests (due_at)
    WHERE arrived_at IS NULL AND failed_at IS NULL;

GRANT SELECT, UPDATE ON test_requests TO larm_ingest;
GRANT SELECT, UPDATE, DELETE ON test_requests TO larm_engine;
GRANT SELECT, INSERT, UPDATE ON test_requests TO larm_api;  -- asking again moves the deadline
