-- The person behind the device (issue 19, contract §6): the whole record (site, area, language,
-- notes, the home-care provider and team, how to get in, whom to call in order), the devices
-- and night-supervision plans linked to the person, and absence windows. Still read only through
-- SECURITY DEFINER functions that write the audit row in the same statement (0009): now also by
-- the operator of an alarm of the person's device and by the patrol on its escalation.

ALTER TABLE persons
    ADD COLUMN site text,
    ADD COLUMN area_type text NOT NULL DEFAULT 'town' CHECK (area_type IN ('town', 'rural')),
    ADD COLUMN language text NOT NULL DEFAULT 'sv',
    ADD COLUMN notes text,                 -- medical and other notes for whoever answers
    ADD COLUMN home_care_provider text,
    ADD COLUMN home_care_team text,
    -- [{"kind": "key_safe" | "digital_lock" | "patrol_key", "ref", "where"}]
    ADD COLUMN access jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(access) = 'array'),
    -- [{"name", "relation", "phone", "call_window"}] in call order
    ADD COLUMN contacts jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(contacts) = 'array'),
    -- Whether any way in is recorded: the queue and the patrol page flag an alarm without one
    -- (the services read this column, never the access itself).
    ADD COLUMN has_access boolean GENERATED ALWAYS AS (jsonb_array_length(access) > 0) STORED;

-- The devices and plans of a person: one person per device and per plan. Pseudonymous (refs
-- only), so the services may read them to find a device's person.
CREATE TABLE person_devices (
    device_id  text    PRIMARY KEY,
    person_ref text    NOT NULL REFERENCES persons ON DELETE CASCADE,
    position   integer NOT NULL DEFAULT 1
);
CREATE INDEX person_devices_person ON person_devices (person_ref);
CREATE TABLE person_plans (
    plan_id    text    PRIMARY KEY,
    person_ref text    NOT NULL REFERENCES persons ON DELETE CASCADE,
    position   integer NOT NULL DEFAULT 1
);
CREATE INDEX person_plans_person ON person_plans (person_ref);
INSERT INTO person_devices (device_id, person_ref)
    SELECT device_id, person_ref FROM persons WHERE device_id IS NOT NULL;
INSERT INTO person_plans (plan_id, person_ref)
    SELECT plan_id, person_ref FROM persons WHERE plan_id IS NOT NULL;

-- A person away (hospital, travel): no `device.offline` and no night checks for the person's
-- devices and plans inside [starts_at, ends_at); it ends by itself. The reason is personal data
-- (erased with the person); the services read only the times.
CREATE TABLE person_absences (
    person_ref text        NOT NULL REFERENCES persons ON DELETE CASCADE,
    absence_id text        NOT NULL,
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL CHECK (ends_at > starts_at),
    reason     text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text        NOT NULL,
    PRIMARY KEY (person_ref, absence_id)
);
CREATE INDEX person_absences_window ON person_absences (person_ref, starts_at, ends_at);

-- The erasure of 0010 read `persons.device_id`; erase_person below does it for every device.
DROP TRIGGER persons_erased_cases ON persons;
DROP FUNCTION larm_person_erased_cases();
DROP FUNCTION read_person(text, text, text);
DROP FUNCTION write_person(text, text, text, text, text, text, text, text, text);
DROP FUNCTION erase_person(text, text, text);
ALTER TABLE persons DROP COLUMN device_id, DROP COLUMN plan_id;

-- The person of a device (or of a plan; a plan's camera is the person's device too).
CREATE FUNCTION larm_person_of(p_device_id text, p_plan_id text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT person_ref FROM (
        SELECT person_ref, 1 AS o FROM person_devices WHERE device_id = p_device_id
        UNION ALL
        SELECT person_ref, 2 FROM person_plans WHERE plan_id = p_plan_id
        UNION ALL
        SELECT pp.person_ref, 3 FROM person_plans pp
        JOIN supervision_plans sp ON sp.plan_id = pp.plan_id
        WHERE sp.device_id = p_device_id
    ) found ORDER BY o LIMIT 1
$$;

-- Whether the person is away at `p_at`.
CREATE FUNCTION larm_absent(p_person_ref text, p_at timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM person_absences
        WHERE person_ref = p_person_ref AND starts_at <= p_at AND p_at < ends_at)
$$;

-- The whole record, as the read functions return it: a type and a function, not a view, so
-- that nothing but `persons` is a relation with a name or an address in it.
CREATE TYPE person_record AS (
    person_ref text, site text, name text, address text, area_type text, language text,
    phone text, notes text, access_notes text, home_care_provider text, home_care_team text,
    access jsonb, contacts jsonb, devices text[], plans text[], absences jsonb,
    updated_at timestamptz, updated_by text
);
CREATE FUNCTION larm_person_record(p_person_ref text) RETURNS SETOF person_record
LANGUAGE sql STABLE AS $$
SELECT p.person_ref, p.site, p.name, p.address, p.area_type, p.language, p.phone, p.notes,
       p.access_notes, p.home_care_provider, p.home_care_team, p.access, p.contacts,
       coalesce((SELECT array_agg(d.device_id ORDER BY d.position, d.device_id)
                 FROM person_devices d WHERE d.person_ref = p.person_ref), '{}'),
       coalesce((SELECT array_agg(l.plan_id ORDER BY l.position, l.plan_id)
                 FROM person_plans l WHERE l.person_ref = p.person_ref), '{}'),
       coalesce((SELECT jsonb_agg(jsonb_build_object(
                            'absence_id', a.absence_id, 'from', a.starts_at,
                            'until', a.ends_at, 'reason', a.reason)
                        ORDER BY a.starts_at, a.absence_id)
                 FROM person_absences a WHERE a.person_ref = p.person_ref), '[]'),
       p.updated_at, p.updated_by
FROM persons p WHERE p.person_ref = p_person_ref
$$;
REVOKE ALL ON FUNCTION larm_person_record(text) FROM PUBLIC;

-- One person's record by its ref (supervisor, admin), audited `person.read` found or not.
CREATE FUNCTION read_person(p_person_ref text, p_actor text, p_role text)
RETURNS SETOF person_record
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF p_role NOT IN ('supervisor', 'admin') THEN
        RAISE EXCEPTION 'the % role may not read persons', p_role
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO audit_log (actor, role, action, subject_type, subject_id, details)
    VALUES (p_actor, p_role, 'person.read', 'person', p_person_ref, jsonb_build_object(
        'found', EXISTS (SELECT 1 FROM persons WHERE person_ref = p_person_ref)));
    RETURN QUERY SELECT * FROM larm_person_record(p_person_ref);
END $$;

-- The person of an alarm, for whoever handles it: the operator and the supervisor while the
-- alarm is open and for a day after it was resolved; the patrol while it has a live escalation
-- of that alarm. Nothing (and no audit row) when not allowed or nobody is linked; audited
-- `person.read` with the alarm otherwise.
CREATE FUNCTION read_person_of_alarm(p_alarm_id uuid, p_actor text, p_role text)
RETURNS SETOF person_record
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    a alarms;
    ref text;
    allowed boolean;
BEGIN
    SELECT * INTO a FROM alarms WHERE alarm_id = p_alarm_id;
    allowed := CASE
        WHEN a.alarm_id IS NULL THEN false
        WHEN p_role IN ('operator', 'supervisor')
            THEN a.state <> 'resolved' OR a.resolved_at > now() - interval '24 hours'
        WHEN p_role = 'patrol'
            THEN EXISTS (SELECT 1 FROM escalations e WHERE e.alarm_id = p_alarm_id
                         AND e.state IN ('open', 'acknowledged', 'arrived'))
        ELSE false END;
    IF NOT allowed THEN
        RETURN;
    END IF;
    ref := larm_person_of(a.device_id, NULL);
    IF ref IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO audit_log (actor, role, action, subject_type, subject_id, details)
    VALUES (p_actor, p_role, 'person.read', 'person', ref,
            jsonb_build_object('via', 'alarm', 'alarm_id', p_alarm_id));
    RETURN QUERY SELECT * FROM larm_person_record(ref);
END $$;

-- The person of an escalation, for the patrol while the escalation is live (the supervisor at
-- any time): where to go and how to get in. Audited `person.read` with the escalation.
CREATE FUNCTION read_person_of_escalation(p_escalation_id uuid, p_actor text, p_role text)
RETURNS SETOF person_record
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    e escalations;
    ref text;
    allowed boolean;
BEGIN
    SELECT * INTO e FROM escalations WHERE escalation_id = p_escalation_id;
    allowed := CASE
        WHEN e.escalation_id IS NULL THEN false
        WHEN p_role = 'supervisor' THEN true
        WHEN p_role = 'patrol' THEN e.state IN ('open', 'acknowledged', 'arrived')
        ELSE false END;
    IF NOT allowed THEN
        RETURN;
    END IF;
    ref := larm_person_of(e.device_id, e.plan_id);
    IF ref IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO audit_log (actor, role, action, subject_type, subject_id, details)
    VALUES (p_actor, p_role, 'person.read', 'person', ref,
            jsonb_build_object('via', 'escalation', 'escalation_id', p_escalation_id));
    RETURN QUERY SELECT * FROM larm_person_record(ref);
END $$;

-- Create or replace a person's record (admin): `p_record` holds the fields of
-- `PUT /api/v1/persons/{id}` (devices and plans as lists of ids). A device or plan of another
-- person is a unique violation (409). Audited `person.write` (no personal data in it).
CREATE FUNCTION write_person_record(p_person_ref text, p_record jsonb, p_actor text, p_role text)
RETURNS SETOF person_record
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF p_role <> 'admin' THEN
        RAISE EXCEPTION 'the % role may not write persons', p_role
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO persons (person_ref, site, name, address, area_type, language, phone, notes,
                         access_notes, home_care_provider, home_care_team, access, contacts,
                         updated_by)
    VALUES (p_person_ref, p_record->>'site', p_record->>'name', p_record->>'address',
            coalesce(p_record->>'area_type', 'town'), coalesce(p_record->>'language', 'sv'),
            p_record->>'phone', p_record->>'notes', p_record->>'access_notes',
            p_record->>'home_care_provider', p_record->>'home_care_team',
            coalesce(p_record->'access', '[]'), coalesce(p_record->'contacts', '[]'), p_actor)
    ON CONFLICT (person_ref) DO UPDATE SET
        site = EXCLUDED.site, name = EXCLUDED.name, address = EXCLUDED.address,
        area_type = EXCLUDED.area_type, language = EXCLUDED.language, phone = EXCLUDED.phone,
        notes = EXCLUDED.notes, access_notes = EXCLUDED.access_notes,
        home_care_provider = EXCLUDED.home_care_provider,
        home_care_team = EXCLUDED.home_care_team, access = EXCLUDED.access,
        contacts = EXCLUDED.contacts, updated_by = EXCLUDED.updated_by, updated_at = now();
    DELETE FROM person_devices WHERE person_ref = p_person_ref;
    INSERT INTO person_devices (device_id, person_ref, position)
    SELECT d.value, p_person_ref, d.n
    FROM jsonb_array_elements_text(coalesce(p_record->'devices', '[]')) WITH ORDINALITY d(value, n);
    DELETE FROM person_plans WHERE person_ref = p_person_ref;
    INSERT INTO person_plans (plan_id, person_ref, position)
    SELECT l.value, p_person_ref, l.n
    FROM jsonb_array_elements_text(coalesce(p_record->'plans', '[]')) WITH ORDINALITY l(value, n);
    INSERT INTO audit_log (actor, role, action, subject_type, subject_id)
    VALUES (p_actor, p_role, 'person.write', 'person', p_person_ref);
    RETURN QUERY SELECT * FROM larm_person_record(p_person_ref);
END $$;

-- 0009's call, kept for the clients that know only it (one device, one plan).
CREATE FUNCTION write_person(
    p_person_ref text, p_device_id text, p_plan_id text, p_name text, p_address text,
    p_phone text, p_access_notes text, p_actor text, p_role text
) RETURNS SETOF person_record
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT * FROM write_person_record(p_person_ref, jsonb_build_object(
        'name', p_name, 'address', p_address, 'phone', p_phone, 'access_notes', p_access_notes,
        'devices', CASE WHEN p_device_id IS NULL THEN '[]'::jsonb
                        ELSE jsonb_build_array(p_device_id) END,
        'plans', CASE WHEN p_plan_id IS NULL THEN '[]'::jsonb
                      ELSE jsonb_build_array(p_plan_id) END), p_actor, p_role)
$$;

-- An absence window of a person (supervisor, admin), created or replaced. The night checks of
-- the person's plans not yet begun inside it are taken away at once (the engine's sweeps do not
-- make new ones inside it, nor declare the person's devices offline). The person's absences that
-- ended more than 30 days ago are removed; of the rest a person has at most 100.
-- Nothing returned: no such person. Audited `person.absence` (no reason in it).
CREATE FUNCTION write_absence(
    p_person_ref text, p_absence_id text, p_from timestamptz, p_until timestamptz,
    p_reason text, p_actor text, p_role text
) RETURNS TABLE (absence_id text, starts_at timestamptz, ends_at timestamptz, reason text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
BEGIN
    IF p_role NOT IN ('supervisor', 'admin') THEN
        RAISE EXCEPTION 'the % role may not write absences', p_role
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM 1 FROM persons WHERE person_ref = p_person_ref FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    DELETE FROM person_absences a
    WHERE a.person_ref = p_person_ref AND a.ends_at < now() - interval '30 days';
    IF (SELECT count(*) FROM person_absences a
        WHERE a.person_ref = p_person_ref AND a.absence_id <> p_absence_id) >= 100 THEN
        RAISE EXCEPTION 'a person has at most 100 absences' USING ERRCODE = 'check_violation';
    END IF;
    INSERT INTO person_absences AS a (person_ref, absence_id, starts_at, ends_at, reason,
                                      updated_by)
    VALUES (p_person_ref, p_absence_id, p_from, p_until, p_reason, p_actor)
    ON CONFLICT ON CONSTRAINT person_absences_pkey DO UPDATE SET
        starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at, reason = EXCLUDED.reason,
        updated_by = EXCLUDED.updated_by, updated_at = now();
    DELETE FROM supervision_checks c
    WHERE c.state = 'pending' AND c.escalation_id IS NULL
      AND c.scheduled_for >= p_from AND c.scheduled_for < p_until
      AND larm_person_of(c.device_id, c.plan_id) = p_person_ref;
    INSERT INTO audit_log (actor, role, action, subject_type, subject_id, details)
    VALUES (p_actor, p_role, 'person.absence', 'person', p_person_ref,
            jsonb_build_object('absence_id', p_absence_id));
    RETURN QUERY SELECT a.absence_id, a.starts_at, a.ends_at, a.reason FROM person_absences a
        WHERE a.person_ref = p_person_ref AND a.absence_id = p_absence_id;
END $$;

-- Erasure (GDPR art. 17): the person's row with their links, absences and hand-over notes
-- (ON DELETE CASCADE), and the free text that may name them on the rows of every device and
-- plan they had (a plan's camera included): escalation reasons, outcomes and cancel reasons,
-- alarm outcomes, the reasons copied into alerts and the outbox, and the case notes, numbers
-- called and closing notes. Refs, times and states stay. `person.erased` holds counts only.
-- (`handover_notes` is made by migration 0013.)
CREATE FUNCTION erase_person(p_person_ref text, p_actor text, p_role text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    erased constant text := '[erased]';
    v_plans text[];
    v_devices text[];
    gone text;
    n jsonb := '{}';
    c integer;
BEGIN
    IF p_role <> 'admin' THEN
        RAISE EXCEPTION 'the % role may not erase persons', p_role
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT coalesce(array_agg(plan_id), '{}') INTO v_plans
    FROM person_plans WHERE person_ref = p_person_ref;
    SELECT coalesce(array_agg(device_id), '{}') INTO v_devices FROM (
        SELECT device_id FROM person_devices WHERE person_ref = p_person_ref
        UNION SELECT device_id FROM supervision_plans WHERE plan_id = ANY(v_plans)) d;
    SELECT count(*) INTO c FROM handover_notes WHERE person_ref = p_person_ref;
    n := n || jsonb_build_object('handover_notes', c);
    DELETE FROM persons WHERE person_ref = p_person_ref RETURNING person_ref INTO gone;
    IF gone IS NOT NULL THEN
        UPDATE escalations SET reason = erased,
            outcome = CASE WHEN outcome IS NULL THEN NULL ELSE erased END,
            cancel_reason = CASE WHEN cancel_reason IS NULL THEN NULL ELSE erased END
        WHERE device_id = ANY(v_devices) OR plan_id = ANY(v_plans);
        GET DIAGNOSTICS c = ROW_COUNT;
        n := n || jsonb_build_object('escalations', c);
        UPDATE alarms SET outcome = erased
        WHERE device_id = ANY(v_devices) AND outcome IS NOT NULL;
        GET DIAGNOSTICS c = ROW_COUNT;
        n := n || jsonb_build_object('alarms', c);
        UPDATE alerts SET details = jsonb_set(details, '{reason}', to_jsonb(erased))
        WHERE details ? 'reason' AND details->>'device_id' = ANY(v_devices);
        GET DIAGNOSTICS c = ROW_COUNT;
        n := n || jsonb_build_object('alerts', c);
        UPDATE outbox SET payload = CASE
                WHEN payload ? 'reason' THEN jsonb_set(payload, '{reason}', to_jsonb(erased))
                ELSE jsonb_set(payload, '{details,reason}', to_jsonb(erased)) END
        WHERE (payload ? 'reason' AND (payload->>'device_id' = ANY(v_devices)
                                       OR payload->>'plan_id' = ANY(v_plans)))
           OR (payload->'details' ? 'reason'
               AND payload #>> '{details,device_id}' = ANY(v_devices));
        GET DIAGNOSTICS c = ROW_COUNT;
        n := n || jsonb_build_object('outbox', c);
        UPDATE case_entries SET detail = '{"erased": true}'
        WHERE alarm_id IN (SELECT alarm_id FROM alarms WHERE device_id = ANY(v_devices))
          AND (action IN ('note', 'call', 'escalated', 'patrol_ack', 'patrol_arrive',
                          'patrol_complete') OR detail ? 'note')
          AND detail <> '{}';
        GET DIAGNOSTICS c = ROW_COUNT;
        n := n || jsonb_build_object('case_entries', c);
    END IF;
    INSERT INTO audit_log (actor, role, action, subject_type, subject_id, details)
    VALUES (p_actor, p_role, 'person.erased', 'person', p_person_ref,
            n || jsonb_build_object('found', gone IS NOT NULL));
    RETURN gone IS NOT NULL;
END $$;

REVOKE ALL ON FUNCTION read_person(text, text, text), read_person_of_alarm(uuid, text, text),
    read_person_of_escalation(uuid, text, text), write_person_record(text, jsonb, text, text),
    write_person(text, text, text, text, text, text, text, text, text),
    write_absence(text, text, timestamptz, timestamptz, text, text, text),
    erase_person(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION read_person(text, text, text), read_person_of_alarm(uuid, text, text),
    read_person_of_escalation(uuid, text, text), write_person_record(text, jsonb, text, text),
    write_person(text, text, text, text, text, text, text, text, text),
    write_absence(text, text, timestamptz, timestamptz, text, text, text) TO larm_api;
-- The CLI (`larmkedja person erase`) runs as the administrators' role.
GRANT EXECUTE ON FUNCTION erase_person(text, text, text) TO larm_api, larm_app;

-- What the services may read of persons: the ref, the site, the area (the arrival promise of
-- the service-level report) and whether a way in is recorded. No name, address, phone or text.
GRANT SELECT (person_ref, site, area_type, has_access) ON persons TO larm_api, larm_engine;
GRANT SELECT ON person_devices, person_plans TO larm_api, larm_engine;
GRANT SELECT (person_ref, absence_id, starts_at, ends_at) ON person_absences
    TO larm_api, larm_engine;
