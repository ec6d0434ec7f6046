-- A person marked "follow up" (issue 19): an operator or supervisor who has seen something that
-- must not be forgotten at the shift change (a fall without injury, a confused call, a key not
-- found) marks the person with a short reason; the hand-over view lists every person marked,
-- with who marked them, until someone clears the mark when it is done. One mark per person
-- (marking again replaces the reason and the marker). The reason is personal data: it goes with
-- the person (erasure, ON DELETE CASCADE); the audit log keeps that it happened, never the reason.

CREATE TABLE person_follow_ups (
    person_ref  text        PRIMARY KEY REFERENCES persons ON DELETE CASCADE,
    reason      text        NOT NULL,
    marked_at   timestamptz NOT NULL DEFAULT now(),
    marked_by   text        NOT NULL,
    marked_role text        NOT NULL
);

-- The alarms of a device, open or lately resolved: who may mark a person (below) is decided on
-- them, without reading the whole table.
CREATE INDEX alarms_device_resolved ON alarms (device_id, resolved_at);

-- Whether an operator handles, or handled in the last day, an alarm of the person's devices
-- (a plan's camera included): the operator sees the person then (read_person_of_alarm, 0012),
-- and may mark them. The supervisor may mark anyone.
CREATE FUNCTION larm_operator_sees_person(p_person_ref text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM alarms a
        WHERE a.device_id IN (
                SELECT device_id FROM person_devices WHERE person_ref = p_person_ref
                UNION
                SELECT sp.device_id FROM person_plans pp
                JOIN supervision_plans sp ON sp.plan_id = pp.plan_id
                WHERE pp.person_ref = p_person_ref)
          AND (a.state <> 'resolved' OR a.resolved_at > now() - interval '24 hours')
          AND larm_person_of(a.device_id, NULL) = p_person_ref)
$$;

-- Mark (or mark again) a person for follow-up. Nothing returned: no such person, or an operator
-- who does not see the person now (the same answer, so a guess learns nothing); the attempt is
-- audited either way (`person.follow_up`, with `done`; never the reason).
CREATE FUNCTION mark_follow_up(p_person_ref text, p_reason text, p_actor text, p_role text)
RETURNS SETOF person_follow_ups
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    allowed boolean;
BEGIN
    IF p_role NOT IN ('operator', 'supervisor') THEN
        RAISE EXCEPTION 'the % role may not mark persons for follow-up', p_role
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM 1 FROM persons WHERE person_ref = p_person_ref FOR UPDATE;
    allowed := FOUND AND (p_role = 'supervisor' OR larm_operator_sees_person(p_person_ref));
    INSERT INTO audit_log (actor, role, action, subject_type, subject_id, details)
    VALUES (p_actor, p_role, 'person.follow_up', 'person', p_person_ref,
            jsonb_build_object('done', allowed));
    IF NOT allowed THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH marked AS (
        INSERT INTO person_follow_ups AS f (person_ref, reason, marked_by, marked_role)
        VALUES (p_person_ref, p_reason, p_actor, p_role)
        ON CONFLICT (person_ref) DO UPDATE SET
            reason = EXCLUDED.reason, marked_at = now(), marked_by = EXCLUDED.marked_by,
            marked_role = EXCLUDED.marked_role
        RETURNING f.*
    )
    SELECT * FROM marked;
END $$;

-- Done: the mark is cleared (operator, supervisor). False: the person was not marked. Audited
-- `person.follow_up_cleared` with who had marked them and when.
CREATE FUNCTION clear_follow_up(p_person_ref text, p_actor text, p_role text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    gone person_follow_ups;
BEGIN
    IF p_role NOT IN ('operator', 'supervisor') THEN
        RAISE EXCEPTION 'the % role may not clear follow-ups', p_role
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    DELETE FROM person_follow_ups WHERE person_ref = p_person_ref RETURNING * INTO gone;
    INSERT INTO audit_log (actor, role, action, subject_type, subject_id, details)
    VALUES (p_actor, p_role, 'person.follow_up_cleared', 'person', p_person_ref,
            jsonb_build_object('found', gone.person_ref IS NOT NULL,
                               'marked_by', gone.marked_by, 'marked_at', gone.marked_at));
    RETURN gone.person_ref IS NOT NULL;
END $$;

-- Every person marked, of a site (or all), for the hand-over: the name (whom to follow up), the
-- reason and who marked them. Each person shown is audited `person.read` (via the follow-up).
CREATE FUNCTION read_follow_ups(p_site text, p_actor text, p_role text)
RETURNS TABLE (
    person_ref text, name text, site text, reason text, marked_at timestamptz,
    marked_by text, marked_role text
)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
BEGIN
    IF p_role NOT IN ('operator', 'supervisor') THEN
        RAISE EXCEPTION 'the % role may not read follow-ups', p_role
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN QUERY
    WITH shown AS (
        SELECT f.person_ref, p.name, p.site, f.reason, f.marked_at, f.marked_by, f.marked_role
        FROM person_follow_ups f JOIN persons p ON p.person_ref = f.person_ref
        WHERE p_site IS NULL OR p.site = p_site
        ORDER BY f.marked_at, f.person_ref
        LIMIT 1000
    ), audited AS (
        INSERT INTO audit_log (actor, role, action, subject_type, subject_id, details)
        SELECT p_actor, p_role, 'person.read', 'person', s.person_ref,
               '{"via": "follow_up"}'::jsonb
        FROM shown s
    )
    SELECT * FROM shown s ORDER BY s.marked_at, s.person_ref;
END $$;

REVOKE ALL ON FUNCTION larm_operator_sees_person(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION mark_follow_up(text, text, text, text), clear_follow_up(text, text, text),
    read_follow_ups(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mark_follow_up(text, text, text, text),
    clear_follow_up(text, text, text), read_follow_ups(text, text, text) TO larm_api;
-- The case of an alarm shows its person's mark (the person is read, audited, in the same call).
GRANT SELECT ON person_follow_ups TO larm_api;
