-- A device's events are looked up by device only for what is not a heartbeat: its battery
-- readings since mains was lost (the outage's discharge rate, alarms/devices/processor_psycopg.py
-- `OUTAGE_READINGS`), and an engineer's look at what a device sent (its alarms, faults, power).
-- A heartbeat's liveness is in `devices` (`last_seen`, `offline_due_at`), never read back from
-- here. Yet every heartbeat, nearly every event, was entered into this index: one more b-tree
-- insertion of a text key per event in ingest's transaction, for nothing. The index now holds
-- the other kinds only; `tests/integration/test_events_device_index.py` shows the battery
-- readings still found through it.
DROP INDEX events_device_idx;
CREATE INDEX events_device_idx ON events (device_id, received_at DESC) WHERE kind <> 'heartbeat';
