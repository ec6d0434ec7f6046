"""`larmkedja person erase`: a person's erasure from the command line (GDPR art. 17), through
the same audited database function as `DELETE /api/v1/persons/{person_ref}`."""

from __future__ import annotations

import psycopg

from alarms.people.persons_psycopg import ERASE
from larmkedja.settings import Settings

CLI_ACTOR = ("cli", "admin")


def erase(settings: Settings, *, person_ref: str) -> bool:
    """Erase the person (audited with actor 'cli'); True if there was such a person."""
    with psycopg.connect(settings.database_url) as conn:
        row = conn.execute(ERASE, (person_ref, *CLI_ACTOR)).fetchone()
    return bool(row and row[0])
