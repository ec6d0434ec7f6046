-- The alarm chain: alarms and their lifecycle, escalations to the night patrol, alerts and the
-- outbox that publishes them, API tokens, and the append-only audit log.

-- Alarms ----------------------------------------------------------------------------------
CREATE TABLE alarms (
    alarm_id        uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    site            text        NOT NULL,
    device_id       text        NOT NULL,
    kind            text        NOT NULL,
    priority        smallint    NOT NULL CHECK (priority BETWEEN 1 AND 5),
    state           text        NOT NULL DEFAULT 'raised'
                    CHECK (state IN ('raised', 'answered', 'escalated', 'resolved')),
    source          text        NOT NULL DEFAULT 'device',
    raised_at       timestamptz NOT NULL,  -- when the system received the first event
    device_ts       timestamptz,           -- the device's own time of the first event
    last_event_at   timestamptz NOT NULL,
    event_count     integer     NOT NULL DEFAULT 1 CHECK (event_count >= 1),
    reset_at_device timestamptz,           -- alarm.cancel seen: still needs an operator
    answered_at     timestamptz,
    answered_by     text,
    escalated_at    timestamptz,
    resolved_at     timestamptz,
    resolved_by     text,
    outcome         text,
    details         jsonb       NOT NULL DEFAULT '{}',
    unanswered_due_at timestamptz,         -- next `alarm.unanswered` alert (repeats while raised)
    unanswered_alerts integer   NOT NULL DEFAULT 0,
    version         integer     NOT NULL DEFAULT 1,
    CHECK (state = 'raised' OR answered_at IS NOT NULL OR resolved_by = 'system'),
    CHECK ((state = 'resolved') = (resolved_at IS NOT NULL))
);
-- One open alarm per device and kind: a repeated press folds into it.
CREATE UNIQUE INDEX alarms_one_open ON alarms (device_id, kind) WHERE state <> 'resolved';
CREATE INDEX alarms_queue ON alarms (priority, raised_at) WHERE state <> 'resolved';
CREATE INDEX alarms_unanswered_due ON alarms (unanswered_due_at) WHERE state = 'raised';
CREATE INDEX alarms_answered ON alarms (answered_at) WHERE answered_at IS NOT NULL;

-- Every press that raised or folded into an alarm (never a lost press).
CREATE TABLE alarm_events (
    alarm_id    uuid        NOT NULL REFERENCES alarms,
    event_id    uuid        NOT NULL,
    kind        text        NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (alarm_id, event_id)
);

-- Escalations: work for the night patrol, durable with deadlines ------------------------
CREATE TABLE escalations (
    escalation_id   uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    site            text        NOT NULL,
    device_id       text        NOT NULL,
    alarm_id        uuid        REFERENCES alarms,
    plan_id         text,
    check_id        bigint,
    night           date,
    dedupe_key      text,                  -- one escalation per cause (e.g. a check)
    reason          text        NOT NULL,
    state           text        NOT NULL DEFAULT 'open'
                    CHECK (state IN ('open', 'acknowledged', 'arrived', 'completed', 'cancelled')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text        NOT NULL,
    ack_deadline    timestamptz NOT NULL,
    ack_due_at      timestamptz,           -- next `escalation.unacknowledged` (repeats)
    unack_alerts    integer     NOT NULL DEFAULT 0,
    acknowledged_at timestamptz,
    acknowledged_by text,
    arrived_at      timestamptz,
    arrived_by      text,
    completed_at    timestamptz,
    completed_by    text,
    outcome         text,
    cancelled_at    timestamptz,
    cancelled_by    text,
    cancel_reason   text,
    version         integer     NOT NULL DEFAULT 1,
    CHECK (alarm_id IS NOT NULL OR plan_id IS NOT NULL OR reason <> '')
);
CREATE INDEX escalations_open ON escalations (created_at) WHERE state IN ('open', 'acknowledged', 'arrived');
CREATE INDEX escalations_ack_due ON escalations (ack_due_at) WHERE state = 'open';
-- One live escalation per alarm: escalating twice does not send two cars.
CREATE UNIQUE INDEX escalations_one_per_alarm ON escalations (alarm_id)
    WHERE alarm_id IS NOT NULL AND state IN ('open', 'acknowledged', 'arrived');
-- One escalation per cause, whatever process (or how many engines) sees it.
CREATE UNIQUE INDEX escalations_dedupe ON escalations (dedupe_key) WHERE dedupe_key IS NOT NULL;
CREATE INDEX escalations_night ON escalations (night, site) WHERE night IS NOT NULL;

-- Alerts and the outbox -------------------------------------------------------------------
CREATE TABLE alerts (
    alert_id     uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    site         text        NOT NULL,
    kind         text        NOT NULL,
    severity     text        NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    subject      text        NOT NULL,
    raised_at    timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz,
    details      jsonb       NOT NULL DEFAULT '{}'
);
-- At most one active alert per kind and subject: raising again is a no-op.
CREATE UNIQUE INDEX alerts_one_active ON alerts (kind, subject) WHERE resolved_at IS NULL;
CREATE INDEX alerts_raised ON alerts (raised_at);

-- Messages to publish (alerts, escalations), written in the same transaction as the change
-- that causes them and published at least once by the engine (QoS 1, then marked).
CREATE TABLE outbox (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic        text        NOT NULL,
    payload      jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL;

CREATE FUNCTION larm_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('larm_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION larm_outbox_notify();

CREATE FUNCTION larm_alert_payload(a alerts) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object(
        'alert_id', a.alert_id, 'kind', a.kind, 'severity', a.severity, 'subject', a.subject,
        'site', a.site, 'raised_at', a.raised_at, 'resolved_at', a.resolved_at,
        'state', CASE WHEN a.resolved_at IS NULL THEN 'active' ELSE 'resolved' END,
        'details', a.details)
$$;

-- Raise an alert unless the same kind and subject is already active; publish it if raised.
CREATE FUNCTION larm_raise_alert(
    p_site text, p_kind text, p_severity text, p_subject text, p_details jsonb
) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    a alerts;
BEGIN
    INSERT INTO alerts (site, kind, severity, subject, details)
    VALUES (p_site, p_kind, p_severity, p_subject, coalesce(p_details, '{}'))
    ON CONFLICT (kind, subject) WHERE resolved_at IS NULL DO NOTHING
    RETURNING * INTO a;
    IF a.alert_id IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO outbox (topic, payload)
    VALUES ('larm/v1/' || a.site || '/alerts', larm_alert_payload(a));
    RETURN a.alert_id;
END $$;

-- Publish an active alert again (a repeated reminder), with extra details.
CREATE FUNCTION larm_repeat_alert(p_kind text, p_subject text, p_details jsonb)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    a alerts;
BEGIN
    UPDATE alerts SET details = details || coalesce(p_details, '{}')
    WHERE kind = p_kind AND subject = p_subject AND resolved_at IS NULL
    RETURNING * INTO a;
    IF a.alert_id IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO outbox (topic, payload)
    VALUES ('larm/v1/' || a.site || '/alerts', larm_alert_payload(a));
    RETURN a.alert_id;
END $$;

-- Resolve the active alert of this kind and subject, if any; publish the resolution.
CREATE FUNCTION larm_resolve_alert(p_kind text, p_subject text, p_details jsonb)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    a alerts;
BEGIN
    UPDATE alerts SET resolved_at = now(), details = details || coalesce(p_details, '{}')
    WHERE kind = p_kind AND subject = p_subject AND resolved_at IS NULL
    RETURNING * INTO a;
    IF a.alert_id IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO outbox (topic, payload)
    VALUES ('larm/v1/' || a.site || '/alerts', larm_alert_payload(a));
    RETURN a.alert_id;
END $$;

-- Live changes for the WebSocket stream (delivered on commit) ------------------------------
CREATE FUNCTION larm_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    id uuid;
BEGIN
    IF TG_TABLE_NAME = 'alarms' THEN
        id := NEW.alarm_id;
    ELSE
        id := NEW.escalation_id;
    END IF;
    PERFORM pg_notify('larm_changes', json_build_object(
        'entity', CASE TG_TABLE_NAME WHEN 'alarms' THEN 'alarm' ELSE 'escalation' END,
        'id', id, 'op', lower(TG_OP))::text);
    RETURN NULL;
END $$;
CREATE TRIGGER alarms_notify AFTER INSERT OR UPDATE ON alarms
    FOR EACH ROW EXECUTE FUNCTION larm_notify_change();
CREATE TRIGGER escalations_notify AFTER INSERT OR UPDATE ON escalations
    FOR EACH ROW EXECUTE FUNCTION larm_notify_change();

-- API tokens (only a SHA-256 of each token is stored) -------------------------------------
CREATE TABLE api_tokens (
    token_id     uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name         text        NOT NULL,
    role         text        NOT NULL CHECK (role IN ('operator', 'patrol', 'supervisor', 'admin')),
    token_hash   bytea       NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz
);

-- The audit log: who did what, when. Append-only (a trigger refuses UPDATE and DELETE).
CREATE TABLE audit_log (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text        NOT NULL,
    role         text        NOT NULL,
    action       text        NOT NULL,
    subject_type text        NOT NULL,
    subject_id   text        NOT NULL,
    details      jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_subject ON audit_log (subject_type, subject_id);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE FUNCTION larm_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('larm.audit_retention', true) = 'on' AND TG_OP = 'DELETE' THEN
        RETURN OLD;  -- the retention job, and only it, removes expired rows
    END IF;
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION larm_audit_append_only();

-- Raise the alert, or publish it again if it is already active (a reminder).
CREATE FUNCTION larm_raise_or_repeat_alert(
    p_site text, p_kind text, p_severity text, p_subject text, p_details jsonb
) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    id uuid;
BEGIN
    id := larm_raise_alert(p_site, p_kind, p_severity, p_subject, p_details);
    IF id IS NULL THEN
        id := larm_repeat_alert(p_kind, p_subject, p_details);
    END IF;
    RETURN id;
END $$;

-- An answered (or escalated, or resolved) alarm ends its `alarm.unanswered` alert, whichever
-- path changed it.
CREATE FUNCTION larm_alarm_left_raised() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM larm_resolve_alert('alarm.unanswered', NEW.alarm_id::text,
        jsonb_build_object('answered_at', NEW.answered_at, 'state', NEW.state));
    RETURN NULL;
END $$;
CREATE TRIGGER alarms_left_raised AFTER UPDATE OF state ON alarms
    FOR EACH ROW WHEN (OLD.state = 'raised' AND NEW.state <> 'raised')
    EXECUTE FUNCTION larm_alarm_left_raised();

CREATE FUNCTION larm_escalation_payload(e escalations) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'escalation_id', e.escalation_id, 'reason', e.reason, 'device_id', e.device_id,
        'site', e.site, 'alarm_id', e.alarm_id, 'plan_id', e.plan_id, 'check_id', e.check_id,
        'night', e.night,
        'state', e.state, 'created_at', e.created_at, 'ack_deadline', e.ack_deadline,
        'republished', e.unack_alerts > 0))
$$;

-- Create an escalation for the night patrol and publish it. Idempotent: a second call for the
-- same live alarm, or with the same dedupe key, returns the existing one and publishes nothing.
CREATE FUNCTION larm_create_escalation(
    p_site text, p_device_id text, p_alarm_id uuid, p_plan_id text, p_check_id bigint,
    p_night date, p_dedupe_key text, p_reason text, p_created_by text, p_ack_s double precision
) RETURNS escalations LANGUAGE plpgsql AS $$
DECLARE
    e escalations;
BEGIN
    INSERT INTO escalations (site, device_id, alarm_id, plan_id, check_id, night, dedupe_key,
                             reason, created_by, ack_deadline, ack_due_at)
    VALUES (p_site, p_device_id, p_alarm_id, p_plan_id, p_check_id, p_night, p_dedupe_key,
            p_reason, p_created_by, now() + make_interval(secs => p_ack_s),
            now() + make_interval(secs => p_ack_s))
    ON CONFLICT DO NOTHING
    RETURNING * INTO e;
    IF e.escalation_id IS NULL THEN
        SELECT * INTO e FROM escalations
        WHERE (p_dedupe_key IS NOT NULL AND dedupe_key = p_dedupe_key)
           OR (p_alarm_id IS NOT NULL AND alarm_id = p_alarm_id
               AND state IN ('open', 'acknowledged', 'arrived'))
        LIMIT 1;
        RETURN e;
    END IF;
    INSERT INTO outbox (topic, payload)
    VALUES ('larm/v1/' || e.site || '/escalations', larm_escalation_payload(e));
    RETURN e;
END $$;
