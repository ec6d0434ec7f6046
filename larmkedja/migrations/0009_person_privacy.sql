-- Person privacy: the API role sees a person only through functions that audit the read in the
-- same statement, and a person can be erased (GDPR art. 17) with the audit keeping only that it
-- happened. SECURITY DEFINER, owned by the migration owner, search_path pinned, EXECUTE only for
-- the roles that need it.

-- The API role loses its direct access to persons. It keeps SELECT on the two pseudonymous
-- columns only (the patrol's escalation list shows the ref of the device's person; no name,
-- address, phone or notes), so `SELECT * FROM persons` is refused. Writes go through
-- `write_person` too: an upsert with RETURNING needs SELECT, and the write's audit row is then
-- written in the same statement as the write.
REVOKE ALL ON persons FROM larm_api;
GRANT SELECT (person_ref, device_id) ON persons TO larm_api;

-- One person's record, and its `person.read` audit row (found or not), in one statement.
CREATE FUNCTION read_person(p_person_ref text, p_actor text, p_role text) RETURNS SETOF persons
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF p_role NOT IN ('supervisor', 'admin') THEN
        RAISE EXCEPTION 'the % role may not read persons', p_role
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN QUERY
    WITH found AS (SELECT * FROM persons WHERE person_ref = p_person_ref),
    audited AS (
        INSERT INTO audit_log (actor, role, action, subject_type, subject_id, details)
        SELECT p_actor, p_role, 'person.read', 'person', p_person_ref,
               jsonb_build_object('found', EXISTS (SELECT 1 FROM found))
    )
    SELECT * FROM found;
END $$;

-- Create or replace a person's record, and its `person.write` audit row.
CREATE FUNCTION write_person(
    p_person_ref text, p_device_id text, p_plan_id text, p_name text, p_address text,
    p_phone text, p_access_notes text, p_actor text, p_role text
) RETURNS SETOF persons
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF p_role <> 'admin' THEN
        RAISE EXCEPTION 'the % role may not write persons', p_role
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN QUERY
    WITH written AS (
        INSERT INTO persons (person_ref, device_id, plan_id, name, address, phone, access_notes,
                             updated_by)
        VALUES (p_person_ref, p_device_id, p_plan_id, p_name, p_address, p_phone,
                p_access_notes, p_actor)
        ON CONFLICT (person_ref) DO UPDATE SET
            device_id = EXCLUDED.device_id, plan_id = EXCLUDED.plan_id, name = EXCLUDED.name,
            address = EXCLUDED.address, phone = EXCLUDED.phone,
            access_notes = EXCLUDED.access_notes, updated_by = EXCLUDED.updated_by,
            updated_at = now()
        RETURNING *
    ), audited AS (
        INSERT INTO audit_log (actor, role, action, subject_type, subject_id)
        SELECT p_actor, p_role, 'person.write', 'person', person_ref FROM written
    )
    SELECT * FROM written;
END $$;

-- Erasure: the persons row, and the free text that may name the person on the rows of their
-- device and plan (an operator's escalation reason, the patrol's outcome or cancel reason, an
-- alarm's outcome, and the copies of the reason in alerts and the outbox). The refs, times and
-- states stay: they are the service's record and name nobody once the registry row is gone.
-- Writes `person.erased` with counts only. Returns whether there was such a person.
CREATE FUNCTION erase_person(p_person_ref text, p_actor text, p_role text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    gone persons;
    erased constant text := '[erased]';
    n_escalations integer := 0;
    n_alarms integer := 0;
    n_alerts integer := 0;
    n_outbox integer := 0;
BEGIN
    IF p_role <> 'admin' THEN
        RAISE EXCEPTION 'the % role may not erase persons', p_role
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    DELETE FROM persons WHERE person_ref = p_person_ref RETURNING * INTO gone;
    IF gone.person_ref IS NOT NULL THEN
        UPDATE escalations SET reason = erased,
            outcome = CASE WHEN outcome IS NULL THEN NULL ELSE erased END,
            cancel_reason = CASE WHEN cancel_reason IS NULL THEN NULL ELSE erased END
        WHERE device_id = gone.device_id OR plan_id = gone.plan_id;
        GET DIAGNOSTICS n_escalations = ROW_COUNT;
        UPDATE alarms SET outcome = erased
        WHERE device_id = gone.device_id AND outcome IS NOT NULL;
        GET DIAGNOSTICS n_alarms = ROW_COUNT;
        UPDATE alerts SET details = jsonb_set(details, '{reason}', to_jsonb(erased))
        WHERE details ? 'reason' AND details->>'device_id' = gone.device_id;
        GET DIAGNOSTICS n_alerts = ROW_COUNT;
        UPDATE outbox SET payload = CASE
                WHEN payload ? 'reason' THEN jsonb_set(payload, '{reason}', to_jsonb(erased))
                ELSE jsonb_set(payload, '{details,reason}', to_jsonb(erased)) END
        WHERE (payload ? 'reason' AND (payload->>'device_id' = gone.device_id
                                       OR payload->>'plan_id' = gone.plan_id))
           OR (payload->'details' ? 'reason'
               AND payload #>> '{details,device_id}' = gone.device_id);
        GET DIAGNOSTICS n_outbox = ROW_COUNT;
    END IF;
    INSERT INTO audit_log (actor, role, action, subject_type, subject_id, details)
    VALUES (p_actor, p_role, 'person.erased', 'person', p_person_ref, jsonb_build_object(
        'found', gone.person_ref IS NOT NULL, 'escalations', n_escalations,
        'alarms', n_alarms, 'alerts', n_alerts, 'outbox', n_outbox));
    RETURN gone.person_ref IS NOT NULL;
END $$;

REVOKE ALL ON FUNCTION read_person(text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION write_person(text, text, text, text, text, text, text, text, text)
    FROM PUBLIC;
REVOKE ALL ON FUNCTION erase_person(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION read_person(text, text, text) TO larm_api;
GRANT EXECUTE ON FUNCTION write_person(text, text, text, text, text, text, text, text, text)
    TO larm_api;
-- The CLI (`larmkedja person erase`) runs as the administrators' role.
GRANT EXECUTE ON FUNCTION erase_person(text, text, text) TO larm_api, larm_app;
