-- Night digital supervision: plans, the expected checks of each night, escalation deadlines.

CREATE TABLE supervision_plans (
    plan_id        text        PRIMARY KEY,
    device_id      text        NOT NULL,    -- the camera
    site           text        NOT NULL,
    checks         text[]      NOT NULL,    -- local wall-clock times, HH:MM or HH:MM:SS
    window_minutes double precision NOT NULL CHECK (window_minutes > 0),
    timezone       text        NOT NULL DEFAULT 'Europe/Stockholm',
    paused_nights  date[]      NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    updated_by     text        NOT NULL,
    version        integer     NOT NULL DEFAULT 1
);
CREATE INDEX supervision_plans_device ON supervision_plans (device_id);

-- Each expected check of each night, materialised ahead of time. Only who looked, when and for
-- how long is kept: no images, ever.
CREATE TABLE supervision_checks (
    check_id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    plan_id          text        NOT NULL REFERENCES supervision_plans ON DELETE CASCADE,
    night            date        NOT NULL,
    local_time       text        NOT NULL,
    site             text        NOT NULL,
    device_id        text        NOT NULL,
    scheduled_for    timestamptz NOT NULL,
    window_end       timestamptz NOT NULL,
    state            text        NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'done_ok', 'not_seen', 'rechecked_ok',
                                      'missed', 'escalated')),
    result_at        timestamptz,
    outcome          text,
    operator         text,
    look_s           double precision,
    recheck_due_at   timestamptz,        -- when the re-check should be done
    recheck_deadline timestamptz,        -- … and by when at the latest (+ the window)
    rechecked_at     timestamptz,
    recheck_outcome  text,
    recheck_operator text,
    late_result_at   timestamptz,        -- a result that came after the window closed
    escalation_id    uuid        REFERENCES escalations,
    UNIQUE (plan_id, night, local_time)
);
CREATE INDEX supervision_checks_window ON supervision_checks (window_end) WHERE state = 'pending';
CREATE INDEX supervision_checks_recheck ON supervision_checks (recheck_deadline)
    WHERE state = 'not_seen';
CREATE INDEX supervision_checks_night ON supervision_checks (night, site);
CREATE INDEX supervision_checks_plan ON supervision_checks (plan_id, scheduled_for);

-- An escalation that leaves `open` ends its `escalation.unacknowledged` alert; one that ends
-- (completed or cancelled) ends the supervision alert of its check.
CREATE FUNCTION larm_escalation_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.state = 'open' AND NEW.state <> 'open' THEN
        PERFORM larm_resolve_alert('escalation.unacknowledged', NEW.escalation_id::text,
            jsonb_build_object('state', NEW.state));
    END IF;
    IF NEW.state IN ('completed', 'cancelled') AND NEW.check_id IS NOT NULL THEN
        PERFORM larm_resolve_alert('supervision.check_missed', 'check:' || NEW.check_id,
            jsonb_build_object('escalation', NEW.state, 'outcome', NEW.outcome));
        PERFORM larm_resolve_alert('supervision.not_seen', 'check:' || NEW.check_id,
            jsonb_build_object('escalation', NEW.state, 'outcome', NEW.outcome));
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER escalations_moved AFTER UPDATE OF state ON escalations
    FOR EACH ROW EXECUTE FUNCTION larm_escalation_moved();

-- Not acknowledged in time: tell the supervisor and publish the escalation again.
CREATE FUNCTION larm_escalation_unacknowledged(p_escalation_id uuid) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    e escalations;
BEGIN
    SELECT * INTO e FROM escalations WHERE escalation_id = p_escalation_id;
    INSERT INTO outbox (topic, payload)
    VALUES ('larm/v1/' || e.site || '/escalations', larm_escalation_payload(e));
    RETURN larm_raise_or_repeat_alert(e.site, 'escalation.unacknowledged', 'critical',
        e.escalation_id::text,
        jsonb_build_object('escalation_id', e.escalation_id, 'reason', e.reason,
                           'device_id', e.device_id, 'created_at', e.created_at,
                           'ack_deadline', e.ack_deadline, 'republished', e.unack_alerts));
END $$;
