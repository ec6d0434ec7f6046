-- Security and data protection: the services' own database role (which cannot change the
-- audit log), the one person registry, device registrations, and retention.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'larm_app') THEN
        CREATE ROLE larm_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO larm_app', current_database());
END $$;

-- Settings only the owner writes (retention); the services read them.
CREATE TABLE larm_config (
    key        text        PRIMARY KEY,
    value      text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO larm_config (key, value) VALUES
    ('retention_days', '90'), ('alarm_retention_days', '1825'), ('audit_retention_days', '1825');

-- Everything that identifies a person lives here and nowhere else; events, alarms, checks and
-- escalations refer to devices and plans. Read only by supervisor and admin, every read audited.
CREATE TABLE persons (
    person_ref   text        PRIMARY KEY,  -- a pseudonymous reference, e.g. a key-box number
    device_id    text        UNIQUE,
    plan_id      text        UNIQUE,
    name         text        NOT NULL,
    address      text        NOT NULL,
    phone        text,
    access_notes text,                      -- key box, door code hints, pets
    updated_at   timestamptz NOT NULL DEFAULT now(),
    updated_by   text        NOT NULL
);

-- Devices given MQTT credentials (`larmkedja device provision`); the secret is only in the
-- broker's password file, hashed.
CREATE TABLE device_registrations (
    device_id      text        PRIMARY KEY,
    site           text        NOT NULL,
    provisioned_at timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz
);

-- Retention, run by the engine. SECURITY DEFINER: dropping chunks needs the owner, and the
-- services may not delete audit rows themselves; the periods come from larm_config only.
CREATE FUNCTION larm_apply_retention() RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    events_days integer := (SELECT value::integer FROM larm_config WHERE key = 'retention_days');
    alarm_days  integer := (SELECT value::integer FROM larm_config WHERE key = 'alarm_retention_days');
    audit_days  integer := (SELECT value::integer FROM larm_config WHERE key = 'audit_retention_days');
    chunks integer;
    ids integer;
    dead integer;
    alarms_gone integer;
    audit_gone integer;
BEGIN
    SELECT count(*) INTO chunks
    FROM drop_chunks('events', older_than => now() - make_interval(days => events_days));
    DELETE FROM event_ids WHERE received_at < now() - make_interval(days => events_days);
    GET DIAGNOSTICS ids = ROW_COUNT;
    DELETE FROM dead_letters WHERE received_at < now() - make_interval(days => events_days);
    GET DIAGNOSTICS dead = ROW_COUNT;
    DELETE FROM supervision_checks WHERE night < (now() - make_interval(days => alarm_days))::date
        AND escalation_id IS NULL;
    DELETE FROM alarm_events WHERE alarm_id IN (
        SELECT alarm_id FROM alarms WHERE state = 'resolved'
          AND resolved_at < now() - make_interval(days => alarm_days));
    DELETE FROM escalations WHERE state IN ('completed', 'cancelled')
        AND created_at < now() - make_interval(days => alarm_days)
        AND NOT EXISTS (SELECT 1 FROM supervision_checks c WHERE c.escalation_id = escalations.escalation_id);
    DELETE FROM alarms a WHERE a.state = 'resolved'
        AND a.resolved_at < now() - make_interval(days => alarm_days)
        AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.alarm_id = a.alarm_id);
    GET DIAGNOSTICS alarms_gone = ROW_COUNT;
    DELETE FROM alerts WHERE resolved_at < now() - make_interval(days => alarm_days);
    PERFORM set_config('larm.audit_retention', 'on', true);
    DELETE FROM audit_log WHERE at < now() - make_interval(days => audit_days);
    GET DIAGNOSTICS audit_gone = ROW_COUNT;
    PERFORM set_config('larm.audit_retention', 'off', true);
    RETURN jsonb_build_object('event_chunks', chunks, 'event_ids', ids, 'dead_letters', dead,
                              'alarms', alarms_gone, 'audit', audit_gone);
END $$;

-- What the services may do.
GRANT USAGE ON SCHEMA public TO larm_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO larm_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO larm_app;
-- The audit log is append-only for them; configuration and migrations are not theirs.
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM larm_app;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON larm_config, schema_migrations FROM larm_app;
REVOKE ALL ON FUNCTION larm_apply_retention() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION larm_apply_retention() TO larm_app;
-- Tables of later migrations get the same grants (each revokes what it must).
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO larm_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO larm_app;
