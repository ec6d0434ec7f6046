-- One engine owns the deadlines at a time (issue 22; alarms/runtime/leadership_psycopg.py).
-- The owner holds a session-level advisory lock on a connection of its own; when it takes the
-- lock it raises the epoch here, and every transaction of its sweeps and of the outbox first
-- takes this row FOR SHARE with the epoch it was elected with. So a new owner's raise waits for
-- the old owner's transaction in flight, and once raised, every later transaction of the old
-- owner (one that wakes from a hang, say) finds a different epoch and changes nothing.
CREATE TABLE engine_leadership (
    id         boolean     PRIMARY KEY DEFAULT true CHECK (id),
    epoch      bigint      NOT NULL,
    instance   text        NOT NULL,
    elected_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO engine_leadership (epoch, instance) VALUES (0, '');

GRANT SELECT, UPDATE ON engine_leadership TO larm_engine;
GRANT SELECT ON engine_leadership TO larm_api;
