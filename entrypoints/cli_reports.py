"""`larmkedja report`: the monthly service-level letter to the municipality (contract §6),
as JSON or CSV, computed by the same SQL as `GET /api/v1/reports/service-level`.
Its modules are imported when the command runs (as in `cli_dev.py`)."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from larmkedja.settings import Settings

if TYPE_CHECKING:
    from alarms.reports.rules import ServiceLevel

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def month_period(month: str, tz: str) -> tuple[datetime, datetime]:
    """[first midnight of the month, first midnight of the next) in local time."""
    found = _MONTH.match(month)
    if found is None:
        raise argparse.ArgumentTypeError("a month is YYYY-MM, e.g. 2026-11")
    first = date(int(found[1]), int(found[2]), 1)
    following = (first + timedelta(days=32)).replace(day=1)
    zone = ZoneInfo(tz)
    return datetime.combine(first, datetime.min.time(), zone), datetime.combine(
        following, datetime.min.time(), zone
    )


async def _report(settings: Settings, site: str | None, since: datetime, until: datetime) -> Any:
    import psycopg

    from alarms.reports.service_level_psycopg import service_level

    async with await psycopg.AsyncConnection.connect(settings.database_url) as conn:
        return await service_level(conn, settings=settings, site=site, since=since, until=until)


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from alarms.reports.rules import to_csv

    try:
        since, until = month_period(args.month, settings.timezone)
    except argparse.ArgumentTypeError as exc:
        print(f"larmkedja report: {exc}", file=sys.stderr)
        return 2
    report: ServiceLevel = asyncio.run(_report(settings, args.site, since, until))
    sys.stdout.write(to_csv(report) if args.format == "csv" else report.model_dump_json(indent=2))
    if args.format != "csv":
        sys.stdout.write("\n")
    return 0


def register(sub: Any) -> None:
    report = sub.add_parser("report", help="the service-level report of a month (JSON or CSV)")
    report.add_argument("--site", help="one site (default: all)")
    report.add_argument("--month", required=True, help="YYYY-MM, in LARM_TIMEZONE")
    report.add_argument("--format", choices=["json", "csv"], default="json")
    report.set_defaults(func=cmd_report)
