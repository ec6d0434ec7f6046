-- Contract §6: the patrol's `complete` keeps its free-text `outcome` and may carry a `code`
-- (one of the configured outcome codes, checked by the API), so the visit is counted by kind.
ALTER TABLE escalations ADD COLUMN outcome_code text
    CHECK (outcome_code IS NULL OR outcome_code ~ '^[a-z][a-z0-9_]{0,31}$');
