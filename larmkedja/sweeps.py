"""A deadline sweep that is one statement: every row it returns is one alert fired.

Most of the engine's sweeps are exactly that (the statement moves every due deadline and raises
the alert in the same `UPDATE … RETURNING`); they differ only in their SQL and in which
settings it reads, so each says those two things and this class does the rest.
"""

from __future__ import annotations

from typing import ClassVar

from larmkedja.db import Conn
from larmkedja.settings import Settings


class StatementSweep:
    name: str
    statement: ClassVar[str]

    def __init__(self, *, settings: Settings) -> None:
        self._params = self.params(settings)

    @staticmethod
    def params(settings: Settings) -> dict[str, object]:
        """The statement's parameters, read once from the settings."""
        raise NotImplementedError

    def run(self, conn: Conn) -> int:
        return len(conn.execute(self.statement, self._params).fetchall())
