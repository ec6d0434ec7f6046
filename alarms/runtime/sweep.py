"""The engine's port for deadline sweeps: each subdomain brings its own (`*/sweeps_psycopg.py`),
the entry points choose which a process runs (`entrypoints/bootstrap.py`)."""

from __future__ import annotations

from typing import Protocol

from larmkedja.db import Conn


class Sweep(Protocol):
    name: str

    def run(self, conn: Conn) -> int:
        """Fire what is due; returns how many fired. Runs inside a transaction."""
