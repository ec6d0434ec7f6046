"""`larmkedja`: one command for every process and admin task of the project."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from prometheus_client import disable_created_metrics

from alarms.devices import admin as device_admin
from api import tokens_admin
from devstack.stack import Stack
from entrypoints import bootstrap
from gateway import admin as sender_admin
from gateway.app import serve
from gateway.errors import SenderError
from larmkedja import db
from larmkedja.events import event_json_schema
from larmkedja.settings import Settings
from simulators.bench import run as bench
from simulators.runner import run_simulation
from simulators.scenario import DEFAULT, Scenario

log = logging.getLogger("larmkedja")


def _setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


def _on_stop_signals(stop: Callable[[], None]) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: stopping", signal.Signals(signum).name)
        stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    ingest = bootstrap.ingest(settings)
    _on_stop_signals(ingest.stop)
    ingest.run()
    log.info("ingest stopped")
    return 0


def cmd_engine(args: argparse.Namespace, settings: Settings) -> int:
    engine = bootstrap.engine(settings)
    _on_stop_signals(engine.stop)
    engine.run()
    log.info("engine stopped")
    return 0


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "create":
        print(tokens_admin.create(settings, role=args.role, name=args.name, days=args.days))
    elif args.action == "revoke":
        print(f"revoked: {tokens_admin.revoke(settings, name=args.name)}")
    else:
        for line in tokens_admin.listing(settings):
            print(line)
    return 0


def cmd_device(args: argparse.Namespace, settings: Settings) -> int:
    db.prepare(settings, migrate_if_owner=False)
    if args.action == "provision":
        print(json.dumps(device_admin.provision(settings, site=args.site, device_id=args.device)))
    else:
        print(f"revoked: {device_admin.revoke(settings, device_id=args.device)}")
    return 0


def cmd_gateway(args: argparse.Namespace, settings: Settings) -> int:
    db.prepare(settings)
    asyncio.run(serve(settings))
    return 0


def cmd_sender(args: argparse.Namespace, settings: Settings) -> int:
    db.prepare(settings, migrate_if_owner=False)
    try:
        if args.action == "add":
            added = sender_admin.add(
                settings,
                protocol=args.protocol,
                sender_id=args.sender,
                site=args.site,
                device_id=args.device,
                secret=args.secret,
                heartbeat_s=args.heartbeat_s,
            )
            print(json.dumps(added))
        elif args.action == "revoke":
            revoked = sender_admin.revoke(settings, protocol=args.protocol, sender_id=args.sender)
            print(f"revoked: {revoked}")
        else:
            for line in sender_admin.listing(settings):
                print(line)
    except SenderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    bootstrap.serve_api(settings)
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    applied = db.migrate(
        settings.database_admin_url or settings.database_url,
        chunk_interval_s=settings.events_chunk_interval_s,
        app_password=settings.app_db_password,
        config=db.retention_config(settings),
    )
    print(f"{len(applied)} migration(s) applied" + (": " + ", ".join(applied) if applied else ""))
    return 0


def cmd_stack(args: argparse.Namespace, settings: Settings) -> int:
    stack = Stack(state_dir=Path(args.state_dir), tls=settings.mqtt_tls)
    if args.action == "up":
        started = stack.up(fleet=args.fleet)
        print("started: " + (", ".join(started) if started else "nothing (already running)"))
        env = stack.env()
        print(f"API: {env['LARM_API_URL']}   MQTT: {env['LARM_MQTT_HOST']}:{env['LARM_MQTT_PORT']}")
        print(f"settings: source {stack.state_dir / 'env'}")
    elif args.action == "down":
        stopped = stack.down()
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    else:
        print(json.dumps(stack.status(), indent=2))
    return 0


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    return bench.main(
        bench.Options(
            events=args.events,
            devices=args.devices,
            alarms=args.alarms,
            background=args.background,
            state_dir=Path(args.state_dir),
            skip_latency=args.skip_latency,
            soak_minutes=args.soak_minutes,
            soak_only=args.soak_only,
        )
    )


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    scenario = Scenario.load(Path(args.scenario) if args.scenario else DEFAULT)
    overrides: dict[str, object] = {}
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.duration is not None:
        overrides["duration_s"] = args.duration
    if args.speed is not None:
        overrides["speed"] = args.speed
    scenario = scenario.model_copy(update=overrides)
    stop = threading.Event()
    _on_stop_signals(stop.set)
    api_url = args.api_url or f"http://{settings.api_host}:{settings.api_port}"
    sent = run_simulation(settings=settings, scenario=scenario, api_url=api_url, stop=stop)
    print(json.dumps(dict(sorted(sent.items())), indent=2))
    return 0


def cmd_schema(args: argparse.Namespace, settings: Settings) -> int:
    print(json.dumps(event_json_schema(), indent=2, sort_keys=True))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="larmkedja", description=__doc__)
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("ingest", help="MQTT → TimescaleDB ingest service").set_defaults(func=cmd_ingest)
    sub.add_parser("api", help="the HTTP API").set_defaults(func=cmd_api)
    sub.add_parser("engine", help="deadlines, sweeps and the outbox").set_defaults(func=cmd_engine)

    token = sub.add_parser("token", help="API tokens")
    token_sub = token.add_subparsers(dest="action", required=True)
    create = token_sub.add_parser("create", help="create a token and print it (shown once)")
    create.add_argument(
        "--role", required=True, choices=["operator", "patrol", "supervisor", "admin"]
    )
    create.add_argument("--name", required=True, help="who uses it (shown in the audit log)")
    create.add_argument("--days", type=float, default=None, help="expires after N days")
    revoke = token_sub.add_parser("revoke", help="revoke every token with this name")
    revoke.add_argument("--name", required=True)
    token_sub.add_parser("list", help="list tokens (never the secrets)")
    token.set_defaults(func=cmd_token)

    device = sub.add_parser("device", help="device credentials on the broker")
    device_sub = device.add_subparsers(dest="action", required=True)
    provision = device_sub.add_parser("provision", help="create a device; print its credentials")
    provision.add_argument("--site", required=True)
    provision.add_argument("--device", required=True)
    revoke_device = device_sub.add_parser("revoke", help="remove a device's credentials")
    revoke_device.add_argument("--device", required=True)
    device.set_defaults(func=cmd_device)
    sub.add_parser("gateway", help="SCAIP / SOS Access / SIA DC-09 receivers -> MQTT").set_defaults(
        func=cmd_gateway
    )
    sender = sub.add_parser("sender", help="the gateway's sender registry")
    sender_sub = sender.add_subparsers(dest="action", required=True)
    protocols = ["scaip", "sos-access", "sia-dc09"]
    add = sender_sub.add_parser(
        "add", help="map a protocol sender to a device (prints secrets once)"
    )
    add.add_argument("--protocol", required=True, choices=protocols)
    add.add_argument(
        "--sender", required=True, help="SCAIP cid / SOS transmitter code / DC-09 account"
    )
    add.add_argument("--site", required=True)
    add.add_argument("--device", required=True)
    add.add_argument(
        "--secret",
        help="SOS Access password (default: a new one) / DC-09 AES key in hex or 'generate'",
    )
    add.add_argument("--heartbeat-s", type=float, help="the sender's agreed heartbeat period")
    revoke_sender = sender_sub.add_parser("revoke", help="refuse this sender from now on")
    revoke_sender.add_argument("--protocol", required=True, choices=protocols)
    revoke_sender.add_argument("--sender", required=True)
    sender_sub.add_parser("list", help="list senders (never the secrets)")
    sender.set_defaults(func=cmd_sender)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    sub.add_parser("schema", help="print the event JSON Schema").set_defaults(func=cmd_schema)

    stack = sub.add_parser("stack", help="the local stack behind make up/down")
    stack.add_argument("action", choices=["up", "down", "status"])
    stack.add_argument("--state-dir", default=".state")
    stack.add_argument("--fleet", action="store_true", help="also start the simulated fleet")
    stack.set_defaults(func=cmd_stack)

    bench = sub.add_parser("bench", help="the benchmark (make bench)")
    bench.add_argument("--events", type=int, default=200_000, help="backlog to drain")
    bench.add_argument("--devices", type=int, default=250_000)
    bench.add_argument("--alarms", type=int, default=200, help="alarms timed for latency")
    bench.add_argument("--background", type=float, default=4000.0, help="heartbeats/s")
    bench.add_argument("--state-dir", default=".state/bench")
    bench.add_argument("--skip-latency", action="store_true")
    bench.add_argument("--soak-minutes", type=float, default=0.0, help="also soak this long")
    bench.add_argument("--soak-only", action="store_true", help="only the soak")
    bench.set_defaults(func=cmd_bench)

    simulate = sub.add_parser("simulate", help="a simulated fleet with operators and patrol")
    simulate.add_argument(
        "--scenario", help="YAML scenario (default: simulators/scenarios/demo.yaml)"
    )
    simulate.add_argument("--seed", type=int)
    simulate.add_argument("--duration", type=float, help="simulated seconds (0: until stopped)")
    simulate.add_argument("--speed", type=float, help="simulated seconds per second")
    simulate.add_argument("--api-url", help="default: from LARM_API_HOST/PORT")
    simulate.set_defaults(func=cmd_simulate)

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
