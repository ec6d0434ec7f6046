"""`larmkedja stack|bench|simulate|schema`: the developer's commands (the local stack behind
`make up`, the benchmark, the simulated fleet, the event schema). Each command imports what it
runs when it runs, so that registering them costs the process commands nothing."""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from entrypoints.signals import on_stop_signals
from larmkedja.settings import Settings

if TYPE_CHECKING:
    from ingest.store_psycopg import EventStore, Processor


def cmd_stack(args: argparse.Namespace, settings: Settings) -> int:
    from devstack.stack import Stack
    from devstack.stack_ha import HaStack

    stack = (
        HaStack(state_dir=Path(args.state_dir or ".state/ha"))
        if args.ha
        else Stack(state_dir=Path(args.state_dir or ".state"), tls=settings.mqtt_tls)
    )
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
    from simulators.bench import run as bench
    from simulators.bench.ab import parse_change

    return bench.main(
        bench.Options(
            events=args.events,
            devices=args.devices,
            alarms=args.alarms,
            background=args.background,
            state_dir=Path(args.state_dir),
            skip_latency=args.skip_latency,
            backgrounds=tuple(float(b) for b in args.latency_backgrounds.split(",")),
            field_devices=args.field_devices,
            parts=frozenset(args.parts.split(",") if args.parts else bench.PARTS),
            soak_minutes=args.soak_minutes,
            soak_only=args.soak_only,
            ha_latency=args.ha_latency,
            ha_rounds=args.ha_rounds,
            ha_sides=tuple(args.ha_sides.split(",")),
            store_factory=_bench_store,
            ab=parse_change(args.ab) if args.ab else None,
            ab_rounds=args.ab_rounds,
        )
    )


def _bench_store(database_url: str, marks: tuple[Processor, Processor]) -> EventStore:
    """Ingest's store with its processors between the bench's two marks (part 8)."""
    from entrypoints.bootstrap import processors
    from ingest.store_psycopg import EventStore

    first, last = marks
    inner = processors(Settings(database_url=database_url))
    return EventStore(conninfo=database_url, processors=[first, *inner, last])


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from simulators.runner import run_simulation
    from simulators.scenario import DEFAULT, Scenario

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
    on_stop_signals(stop.set)
    api_url = args.api_url or f"http://{settings.api_host}:{settings.api_port}"
    sent = run_simulation(settings=settings, scenario=scenario, api_url=api_url, stop=stop)
    print(json.dumps(dict(sorted(sent.items())), indent=2))
    return 0


def cmd_schema(args: argparse.Namespace, settings: Settings) -> int:
    from larmkedja.events import event_json_schema

    print(json.dumps(event_json_schema(), indent=2, sort_keys=True))
    return 0


def register(sub: Any) -> None:
    """Add the developer's commands to the CLI's subparsers."""
    sub.add_parser("schema", help="print the event JSON Schema").set_defaults(func=cmd_schema)
    stack = sub.add_parser("stack", help="the local stack behind make up/down")
    stack.add_argument("action", choices=["up", "down", "status"])
    stack.add_argument("--state-dir", help="default: .state (.state/ha with --ha)")
    stack.add_argument("--fleet", action="store_true", help="also start the simulated fleet")
    stack.add_argument(
        "--ha", action="store_true", help="the high-availability topology (docs/scaling.md)"
    )
    stack.set_defaults(func=cmd_stack)

    _bench_arguments(sub.add_parser("bench", help="the benchmark (make bench)"))

    simulate = sub.add_parser("simulate", help="a simulated fleet with operators and patrol")
    simulate.add_argument(
        "--scenario", help="YAML scenario (default: simulators/scenarios/demo.yaml)"
    )
    simulate.add_argument("--seed", type=int)
    simulate.add_argument("--duration", type=float, help="simulated seconds (0: until stopped)")
    simulate.add_argument("--speed", type=float, help="simulated seconds per second")
    simulate.add_argument("--api-url", help="default: from LARM_API_HOST/PORT")
    simulate.set_defaults(func=cmd_simulate)


def _bench_arguments(parser: Any) -> None:
    parser.add_argument("--events", type=int, default=200_000, help="backlog to drain")
    parser.add_argument("--devices", type=int, default=250_000)
    parser.add_argument("--alarms", type=int, default=200, help="alarms timed for latency")
    parser.add_argument("--background", type=float, default=4000.0, help="heartbeats/s")
    parser.add_argument("--state-dir", default=".state/bench")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument(
        "--latency-backgrounds", default="4000,12000", help="heartbeats/s of each latency run"
    )
    parser.add_argument("--field-devices", type=int, default=500, help="connections that send them")
    parser.add_argument(
        "--parts",
        help="which parts to run, comma-separated (default: all; simulators/bench/run.py PARTS)",
    )
    parser.add_argument("--soak-minutes", type=float, default=0.0, help="also soak this long")
    parser.add_argument("--soak-only", action="store_true", help="only the soak")
    parser.add_argument(
        "--ha-latency",
        action="store_true",
        help="only the alarm latency: single machine, then the HA topology (docs/scaling.md)",
    )
    parser.add_argument(
        "--ha-rounds",
        type=int,
        default=0,
        help="with --ha-latency: both setups up side by side, timed in N alternating rounds",
    )
    parser.add_argument(
        "--ha-sides",
        default="single,ha",
        help="which setups the rounds time: single, then ha (devices fail over), ha_both",
    )
    parser.add_argument(
        "--ab",
        metavar="LARM_NAME=VALUE,...",
        help="only ingest's drain, as it is and with these settings, in alternating rounds",
    )
    parser.add_argument("--ab-rounds", type=int, default=3, help="rounds of the --ab drains")
    parser.set_defaults(func=cmd_bench)
