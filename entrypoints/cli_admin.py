"""`larmkedja token|device|sender|person`: the admin commands (tokens, device credentials, the
gateway's senders, a person's erasure). Secrets are printed once and stored only hashed or
encrypted. Each command imports what it runs when it runs (as in `cli_dev.py`)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from larmkedja.settings import Settings


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    from api import tokens_admin

    if args.action == "create":
        print(tokens_admin.create(settings, role=args.role, name=args.name, days=args.days))
    elif args.action == "revoke":
        print(f"revoked: {tokens_admin.revoke(settings, name=args.name)}")
    else:
        for line in tokens_admin.listing(settings):
            print(line)
    return 0


def cmd_device(args: argparse.Namespace, settings: Settings) -> int:
    from alarms.devices import admin as device_admin
    from larmkedja import db

    db.prepare(settings, migrate_if_owner=False)
    if args.action == "provision":
        print(json.dumps(device_admin.provision(settings, site=args.site, device_id=args.device)))
    else:
        print(f"revoked: {device_admin.revoke(settings, device_id=args.device)}")
    return 0


def cmd_sender(args: argparse.Namespace, settings: Settings) -> int:
    from gateway import admin as sender_admin
    from gateway.errors import SenderError
    from larmkedja import db

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
                plain=args.plain,
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


def cmd_person(args: argparse.Namespace, settings: Settings) -> int:
    from alarms.people import admin as person_admin
    from larmkedja import db

    db.prepare(settings, migrate_if_owner=False)
    if person_admin.erase(settings, person_ref=args.person):
        print(f"erased: {args.person}")
        return 0
    print(f"no such person: {args.person} (the attempt is audited)", file=sys.stderr)
    return 1


def register(sub: Any) -> None:
    """Add the admin commands to the CLI's subparsers."""
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
        help="SOS Access password / SCAIP SIP digest password / DC-09 AES key in hex "
        "(default: a new one, shown once)",
    )
    add.add_argument(
        "--plain",
        action="store_true",
        help="no secret: a DC-09 account that sends unencrypted blocks, a SCAIP controller "
        "known by its cid alone (anyone who knows the id can send as it)",
    )
    add.add_argument("--heartbeat-s", type=float, help="the sender's agreed heartbeat period")
    revoke_sender = sender_sub.add_parser("revoke", help="refuse this sender from now on")
    revoke_sender.add_argument("--protocol", required=True, choices=protocols)
    revoke_sender.add_argument("--sender", required=True)
    sender_sub.add_parser("list", help="list senders (never the secrets)")
    sender.set_defaults(func=cmd_sender)

    person = sub.add_parser("person", help="the person registry")
    person_sub = person.add_subparsers(dest="action", required=True)
    erase = person_sub.add_parser(
        "erase", help="erase a person and the free text naming them (audited, actor 'cli')"
    )
    erase.add_argument("--person", required=True, help="the person's reference")
    person.set_defaults(func=cmd_person)
