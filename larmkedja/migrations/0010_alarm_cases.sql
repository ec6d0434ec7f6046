-- The case of an alarm: every step with who and when, the operator's calls and notes, who has
-- it now, test alarms, and `alarm.stale` for an alarm answered and then left (issue 19).

-- A test alarm (`"data": {"test": true}`) goes through the whole chain, shown as a test. A real
-- press folding into an open test alarm makes it real (ingest: `test AND EXCLUDED.test`).
ALTER TABLE alarms ADD COLUMN test boolean NOT NULL DEFAULT false;
-- Who has the alarm now: who answered it, until someone takes it over.
ALTER TABLE alarms ADD COLUMN handled_by text;
-- When `alarm.stale` was raised for it (once: an alarm is answered once).
ALTER TABLE alarms ADD COLUMN stale_alerted_at timestamptz;
CREATE INDEX alarms_answered_open ON alarms (answered_at) WHERE state = 'answered';

-- The steps a person took, written by the same statement as the step itself (the alarm's
-- `raised` step is its row). Notes and call attempts are personal data: they go with the
-- alarm (retention) and with the person (erasure); the audit log keeps only that they happened.
CREATE TABLE case_entries (
    entry_id  bigserial   PRIMARY KEY,
    alarm_id  uuid        NOT NULL REFERENCES alarms ON DELETE CASCADE,
    at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    by_name   text        NOT NULL,
    by_role   text        NOT NULL,
    action    text        NOT NULL CHECK (action IN (
        'answered', 'call', 'note', 'escalated', 'patrol_ack', 'patrol_arrive',
        'patrol_complete', 'taken_over', 'resolved')),
    detail    jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX case_entries_alarm ON case_entries (alarm_id, at, entry_id);

-- An alarm that leaves `answered` ends its `alarm.stale` alert and may go stale again later.
CREATE FUNCTION larm_alarm_left_answered() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM larm_resolve_alert('alarm.stale', NEW.alarm_id::text,
        jsonb_build_object('state', NEW.state));
    RETURN NULL;
END $$;
CREATE TRIGGER alarms_left_answered AFTER UPDATE OF state ON alarms
    FOR EACH ROW WHEN (OLD.state = 'answered' AND NEW.state <> 'answered')
    EXECUTE FUNCTION larm_alarm_left_answered();

GRANT SELECT, INSERT ON case_entries TO larm_api;
GRANT USAGE ON SEQUENCE case_entries_entry_id_seq TO larm_api;
GRANT SELECT ON case_entries TO larm_engine;

-- Flood mode: technical alarms of one cause arriving in a burst (a site's power cut, a broker
-- outage coming back) are grouped under one incident, so the queue shows one row for them and
-- personal alarms stay on top; the operator answers or resolves the group in one action,
-- audited per alarm.
CREATE TABLE incidents (
    incident_id uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    site        text        NOT NULL,
    kind        text        NOT NULL,
    opened_at   timestamptz NOT NULL DEFAULT now(),
    closed_at   timestamptz
);
CREATE UNIQUE INDEX incidents_one_open ON incidents (site, kind) WHERE closed_at IS NULL;
ALTER TABLE alarms ADD COLUMN incident_id uuid REFERENCES incidents;
CREATE INDEX alarms_incident ON alarms (incident_id) WHERE incident_id IS NOT NULL;

GRANT SELECT, INSERT, UPDATE, DELETE ON incidents TO larm_engine;
GRANT SELECT ON incidents TO larm_api;

-- A person's erasure (0009's `erase_person`) also takes the free text of the cases of their
-- device's alarms: notes, the numbers called, reasons and closing notes. The steps stay (who
-- did what when), their detail says it was erased.
CREATE FUNCTION larm_person_erased_cases() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    UPDATE case_entries SET detail = '{"erased": true}'
    WHERE alarm_id IN (SELECT alarm_id FROM alarms WHERE device_id = OLD.device_id)
      AND (action IN ('note', 'call', 'escalated', 'patrol_ack', 'patrol_arrive',
                      'patrol_complete') OR detail ? 'note')
      AND detail <> '{}';
    RETURN NULL;
END $$;
CREATE TRIGGER persons_erased_cases AFTER DELETE ON persons
    FOR EACH ROW EXECUTE FUNCTION larm_person_erased_cases();
