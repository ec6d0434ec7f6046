"""`larmkedja`: one command for every process and admin task of the project.

Each command imports what it runs when it runs (`entrypoints/bootstrap.py` says why): the
modules here and the `cli_*` modules that register the rest import little at the top."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from prometheus_client import disable_created_metrics

from entrypoints import cli_admin, cli_dev, cli_reports
from entrypoints.signals import on_stop_signals
from larmkedja.settings import Settings

if TYPE_CHECKING:
    from entrypoints.bootstrap import Service

log = logging.getLogger("larmkedja")


def _setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


def _run(service: Service, name: str) -> int:
    """Run a long-lived process until SIGTERM or SIGINT, which stops it cleanly."""
    on_stop_signals(service.stop)
    service.run()
    log.info("%s stopped", name)
    return 0


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from entrypoints import bootstrap

    return _run(bootstrap.ingest(settings), "ingest")


def cmd_engine(args: argparse.Namespace, settings: Settings) -> int:
    from entrypoints import bootstrap_engine

    return _run(bootstrap_engine.engine(settings), "engine")


def cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    from entrypoints import bootstrap_api

    bootstrap_api.serve_api(settings)
    return 0


def cmd_gateway(args: argparse.Namespace, settings: Settings) -> int:
    from entrypoints.bootstrap import tune_gc
    from gateway.app import serve
    from larmkedja import db

    db.prepare(settings)
    tune_gc()
    asyncio.run(serve(settings))
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from gateway import upgrade_sender_passwords
    from larmkedja import db

    applied = db.migrate(
        settings.database_admin_url or settings.database_url,
        chunk_interval_s=settings.events_chunk_interval_s,
        app_password=settings.app_db_password,
        config=db.retention_config(settings),
        role_passwords=settings.db_role_passwords,
    )
    print(f"{len(applied)} migration(s) applied" + (": " + ", ".join(applied) if applied else ""))
    owner_url = settings.database_admin_url or settings.database_url
    if settings.gateway_secret_key is not None:
        upgraded = upgrade_sender_passwords(settings, owner_url)
        if upgraded:
            print(f"{upgraded} SOS Access password hash(es) now kept as HMAC with the server key")
    else:
        log.warning("LARM_GATEWAY_SECRET_KEY is not set: legacy SOS Access hashes stay as they are")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="larmkedja", description=__doc__)
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("ingest", help="MQTT → TimescaleDB ingest service").set_defaults(func=cmd_ingest)
    sub.add_parser("api", help="the HTTP API").set_defaults(func=cmd_api)
    sub.add_parser("engine", help="deadlines, sweeps and the outbox").set_defaults(func=cmd_engine)
    sub.add_parser("gateway", help="SCAIP / SOS Access / SIA DC-09 receivers -> MQTT").set_defaults(
        func=cmd_gateway
    )
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)

    cli_admin.register(sub)
    cli_reports.register(sub)
    cli_dev.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.log_level)
    disable_created_metrics()  # type: ignore[no-untyped-call]
    settings = Settings()
    try:
        result: int = args.func(args, settings)
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
