"""Our sessions never JIT-compile a statement: the engine's offline sweep, estimated dear over
a large registry and run every tick, spent most of its time compiling (larmkedja/db_connect.py).
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from alarms.devices.sweeps_psycopg import FIRE_OFFLINE
from larmkedja.db_connect import connect

pytestmark = pytest.mark.integration

PARAMS = {"default_s": 90.0, "unanswered_s": 60.0}
DEVICES = 20_000  # enough for the sweep's estimate to pass every `jit_*_above_cost`


def _jit_in_plan(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(f"EXPLAIN (FORMAT JSON) {FIRE_OFFLINE}", PARAMS).fetchone()
    assert row is not None
    return "JIT" in row[0][0]


def test_the_offline_sweep_is_not_compiled_in_our_sessions(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as plain:
        plain.execute(
            "INSERT INTO devices (device_id, site, first_seen, last_seen, offline_due_at)"
            " SELECT 'j-' || g, 'site-' || (g %% 50), now(), now(), now() + interval '5 min'"
            " FROM generate_series(1, %s) g",
            (DEVICES,),
        )
        plain.execute("ANALYZE devices")
        available = plain.execute("SELECT pg_jit_available()").fetchone()
        if not (available and available[0]):
            pytest.skip("this PostgreSQL cannot JIT-compile (no LLVM provider)")
        # The server's defaults would compile it: the check below can fail.
        assert _jit_in_plan(plain)
    ours = connect(database_url, autocommit=True)
    try:
        assert ours.execute("SHOW jit").fetchone() == ("off",)
        assert not _jit_in_plan(ours)
    finally:
        ours.close()
