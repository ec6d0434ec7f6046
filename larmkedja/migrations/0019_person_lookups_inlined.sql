-- A device's person and the person's absences as functions the planner can inline.
--
-- The queue shows every alarm with two flags of its person (no recorded way in, away): each row
-- called `larm_person_of` twice and `larm_absent` once (0012). They are scalar SQL functions that
-- read tables, which PostgreSQL runs as functions, never inlines: 500 alarms listed took 44 ms
-- of the database, ~90 µs a row, and the benchmark's queue polling (50 lists a second) kept the
-- API's database sessions as busy as ingest's. Set-returning SQL functions of one SELECT are
-- inlined when called in FROM, so the lookups are planned as index scans inside the query:
-- the same list in 6 ms (docs/bench.md, 2026-12-07). The scalar functions keep their names
-- and answers and now read the set-returning ones, so each rule is written once.

CREATE FUNCTION larm_persons_of(p_device_id text, p_plan_id text)
RETURNS TABLE (person_ref text)
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

-- The absences of a person that cover `p_at` (their ids and ends only: the reason is personal
-- data).
CREATE FUNCTION larm_absences_at(p_person_ref text, p_at timestamptz)
RETURNS TABLE (absence_id text, ends_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT absence_id, ends_at FROM person_absences
    WHERE person_ref = p_person_ref AND starts_at <= p_at AND p_at < ends_at
$$;

CREATE OR REPLACE FUNCTION larm_person_of(p_device_id text, p_plan_id text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT person_ref FROM larm_persons_of(p_device_id, p_plan_id)
$$;

CREATE OR REPLACE FUNCTION larm_absent(p_person_ref text, p_at timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM larm_absences_at(p_person_ref, p_at))
$$;
