-- Least privilege: each process has a database role of its own with only what it needs, so a
-- compromised network-facing process reaches only its own tables (the gateway cannot read
-- persons or tokens; ingest cannot read persons, tokens or the gateway's keys). `larm_app`
-- stays the administrators' role (the CLI, `.state/env`). Tables of later migrations grant
-- each role what it needs themselves.

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['larm_ingest', 'larm_engine', 'larm_api', 'larm_gateway'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT', r);
        END IF;
        EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', current_database(), r);
        EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', r);
        -- Every process waits at start until the owner has migrated.
        EXECUTE format('GRANT SELECT ON schema_migrations TO %I', r);
    END LOOP;
END $$;

-- Ingest: stores events and dead letters, and runs the processors in the same transaction
-- (devices, alarms, night results; alerts, outbox and escalations through the functions).
GRANT SELECT, INSERT ON events, event_ids, dead_letters, alarm_events TO larm_ingest;
GRANT SELECT, INSERT, UPDATE ON devices, alarms, alerts, outbox, supervision_checks, escalations,
    service_heartbeats TO larm_ingest;
GRANT SELECT ON supervision_plans, larm_config TO larm_ingest;
GRANT USAGE ON SEQUENCE dead_letters_id_seq, outbox_id_seq TO larm_ingest;

-- Engine: the deadlines of every subdomain, the outbox, retention (a SECURITY DEFINER function).
GRANT SELECT, INSERT, UPDATE, DELETE ON alarms, alarm_events, alerts, outbox, devices,
    supervision_checks, escalations, service_heartbeats TO larm_engine;
GRANT SELECT ON supervision_plans, events, larm_config TO larm_engine;
GRANT USAGE ON SEQUENCE outbox_id_seq, supervision_checks_check_id_seq TO larm_engine;
GRANT EXECUTE ON FUNCTION larm_apply_retention() TO larm_engine;

-- API: the queue and the patrol's work, plans and checks, tokens, devices (read), the audit log
-- (append only).
GRANT SELECT, INSERT, UPDATE ON alarms, alarm_events, escalations, alerts, outbox,
    supervision_plans TO larm_api;
GRANT SELECT, INSERT, UPDATE, DELETE ON supervision_checks TO larm_api;
GRANT SELECT, UPDATE ON api_tokens TO larm_api;
GRANT SELECT ON devices, events, service_heartbeats, larm_config TO larm_api;
GRANT INSERT ON audit_log TO larm_api;
-- Persons: read and written by the API's person routes, every read audited by the route
-- (0009 moves the audited reads into the database).
GRANT SELECT, INSERT, UPDATE ON persons TO larm_api;
GRANT USAGE ON SEQUENCE outbox_id_seq, audit_log_id_seq, supervision_checks_check_id_seq
    TO larm_api;

-- Gateway: who its senders are, whether an event is stored already, its dead letters. Nothing
-- else: no persons, no tokens, no alarms.
GRANT SELECT ON gateway_senders, event_ids TO larm_gateway;
GRANT INSERT ON dead_letters TO larm_gateway;
GRANT USAGE ON SEQUENCE dead_letters_id_seq TO larm_gateway;

-- The audit log refuses TRUNCATE too (the row trigger of 0002 sees only UPDATE and DELETE).
CREATE OR REPLACE FUNCTION larm_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('larm.audit_retention', true) = 'on' AND TG_OP = 'DELETE' THEN
        RETURN OLD;  -- the retention job, and only it, removes expired rows
    END IF;
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION larm_audit_append_only();

-- Retention covers escalated checks and their escalations too (0005 kept them for ever).
CREATE OR REPLACE FUNCTION larm_apply_retention() RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    events_days integer := (SELECT value::integer FROM larm_config WHERE key = 'retention_days');
    alarm_days  integer := (SELECT value::integer FROM larm_config WHERE key = 'alarm_retention_days');
    audit_days  integer := (SELECT value::integer FROM larm_config WHERE key = 'audit_retention_days');
    cutoff timestamptz := now() - make_interval(days => alarm_days);
    chunks integer;
    ids integer;
    dead integer;
    checks_gone integer;
    escalations_gone integer;
    alarms_gone integer;
    audit_gone integer;
BEGIN
    SELECT count(*) INTO chunks
    FROM drop_chunks('events', older_than => now() - make_interval(days => events_days));
    DELETE FROM event_ids WHERE received_at < now() - make_interval(days => events_days);
    GET DIAGNOSTICS ids = ROW_COUNT;
    DELETE FROM dead_letters WHERE received_at < now() - make_interval(days => events_days);
    GET DIAGNOSTICS dead = ROW_COUNT;
    DELETE FROM supervision_checks WHERE night < cutoff::date;
    GET DIAGNOSTICS checks_gone = ROW_COUNT;
    DELETE FROM escalations e WHERE e.state IN ('completed', 'cancelled') AND e.created_at < cutoff
        AND NOT EXISTS (SELECT 1 FROM supervision_checks c WHERE c.escalation_id = e.escalation_id);
    GET DIAGNOSTICS escalations_gone = ROW_COUNT;
    DELETE FROM alarm_events WHERE alarm_id IN (
        SELECT a.alarm_id FROM alarms a WHERE a.state = 'resolved' AND a.resolved_at < cutoff
          AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.alarm_id = a.alarm_id));
    DELETE FROM alarms a WHERE a.state = 'resolved' AND a.resolved_at < cutoff
        AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.alarm_id = a.alarm_id);
    GET DIAGNOSTICS alarms_gone = ROW_COUNT;
    DELETE FROM alerts WHERE resolved_at < cutoff;
    PERFORM set_config('larm.audit_retention', 'on', true);
    DELETE FROM audit_log WHERE at < now() - make_interval(days => audit_days);
    GET DIAGNOSTICS audit_gone = ROW_COUNT;
    PERFORM set_config('larm.audit_retention', 'off', true);
    RETURN jsonb_build_object('event_chunks', chunks, 'event_ids', ids, 'dead_letters', dead,
                              'checks', checks_gone, 'escalations', escalations_gone,
                              'alarms', alarms_gone, 'audit', audit_gone);
END $$;
