-- Hand-over notes from home care to the night patrol (issue 19): the messages most often lost
-- between the two. A day team leaves a note on a person for the night; the patrol of the
-- person's site sees it when its shift starts and acknowledges it; one not acknowledged by its
-- `due_at` raises `handover.unacknowledged` to the supervisor (the engine's sweep), resolved
-- when it is acknowledged. The note and its acknowledgement are shown in the person's next case.
-- The text is personal data: it goes with the person (erasure, ON DELETE CASCADE); the audit
-- log and the alert hold only ids and times.

CREATE TABLE handover_notes (
    note_id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    person_ref      text        NOT NULL REFERENCES persons ON DELETE CASCADE,
    site            text        NOT NULL,   -- the person's site when it was left: whose patrol
    text            text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text        NOT NULL,
    due_at          timestamptz NOT NULL,   -- acknowledged by then, or the supervisor is told
    shown_until     timestamptz NOT NULL,   -- the end of the night it is for
    acknowledged_at timestamptz,
    acknowledged_by text,
    alerted_at      timestamptz,            -- when `handover.unacknowledged` was raised
    CHECK (shown_until >= due_at),
    CHECK ((acknowledged_at IS NULL) = (acknowledged_by IS NULL))
);
CREATE INDEX handover_notes_due ON handover_notes (due_at)
    WHERE acknowledged_at IS NULL AND alerted_at IS NULL;
CREATE INDEX handover_notes_site ON handover_notes (site, shown_until);
CREATE INDEX handover_notes_person ON handover_notes (person_ref, created_at);

-- Acknowledged: the alert (if one was raised) ends. Erased with the person: it ends too.
CREATE FUNCTION larm_handover_note_closed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM larm_resolve_alert('handover.unacknowledged', 'handover:' || OLD.note_id,
            jsonb_build_object('erased', true));
    ELSE
        PERFORM larm_resolve_alert('handover.unacknowledged', 'handover:' || NEW.note_id,
            jsonb_build_object('acknowledged_at', NEW.acknowledged_at,
                               'acknowledged_by', NEW.acknowledged_by));
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER handover_notes_acknowledged AFTER UPDATE OF acknowledged_at ON handover_notes
    FOR EACH ROW WHEN (OLD.acknowledged_at IS NULL AND NEW.acknowledged_at IS NOT NULL)
    EXECUTE FUNCTION larm_handover_note_closed();
CREATE TRIGGER handover_notes_erased AFTER DELETE ON handover_notes
    FOR EACH ROW WHEN (OLD.alerted_at IS NOT NULL AND OLD.acknowledged_at IS NULL)
    EXECUTE FUNCTION larm_handover_note_closed();

-- The notes of a site (or all) the patrol must see: those of the current and coming night, and
-- any still unacknowledged, with the person's name and address (where to go). Each person shown
-- is audited `person.read` (via the hand-over notes) in the same statement.
CREATE FUNCTION read_handover_notes(p_site text, p_actor text, p_role text)
RETURNS TABLE (
    note_id uuid, person_ref text, name text, address text, site text, text text,
    created_at timestamptz, created_by text, due_at timestamptz, shown_until timestamptz,
    acknowledged_at timestamptz, acknowledged_by text, alerted_at timestamptz
)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
BEGIN
    IF p_role NOT IN ('patrol', 'supervisor') THEN
        RAISE EXCEPTION 'the % role may not read hand-over notes', p_role
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN QUERY
    WITH shown AS (
        SELECT n.note_id, n.person_ref, p.name, p.address, n.site, n.text, n.created_at,
               n.created_by, n.due_at, n.shown_until, n.acknowledged_at, n.acknowledged_by,
               n.alerted_at
        FROM handover_notes n JOIN persons p ON p.person_ref = n.person_ref
        WHERE (p_site IS NULL OR n.site = p_site)
          AND (n.shown_until > now() OR n.acknowledged_at IS NULL)
        ORDER BY n.due_at, n.created_at, n.note_id
        LIMIT 500
    ), audited AS (
        INSERT INTO audit_log (actor, role, action, subject_type, subject_id, details)
        SELECT DISTINCT p_actor, p_role, 'person.read', 'person', s.person_ref,
               '{"via": "handover_notes"}'::jsonb
        FROM shown s
    )
    SELECT * FROM shown s ORDER BY s.acknowledged_at IS NOT NULL, s.due_at, s.created_at;
END $$;

REVOKE ALL ON FUNCTION read_handover_notes(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION read_handover_notes(text, text, text) TO larm_api;

-- The API leaves notes (the day team) and acknowledges them (the patrol), reads them into a
-- person's case; the engine raises the alert of one not acknowledged in time and removes notes
-- past the alarms' retention. The engine never reads the text.
GRANT SELECT, INSERT ON handover_notes TO larm_api;
GRANT UPDATE (acknowledged_at, acknowledged_by) ON handover_notes TO larm_api;
GRANT SELECT (note_id, person_ref, site, created_at, due_at, shown_until, acknowledged_at,
              alerted_at) ON handover_notes TO larm_engine;
GRANT UPDATE (alerted_at), DELETE ON handover_notes TO larm_engine;
