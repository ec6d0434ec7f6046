"""Service-level reports a municipality can publish (contract §6): what was promised and what
was done, every figure computed in SQL over the stored alarms, escalations, checks and alerts
(no second bookkeeping). `rules` is pure (the report's shape, CSV); `service_level_psycopg`
reads it."""
