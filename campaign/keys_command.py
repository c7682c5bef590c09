"""`campaign keys create|list|revoke`: the HTTP service's API keys, each shown once when created."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import msgspec

from campaign import connect
from redis_model.api_keys import ApiKeyStore


def add_parsers(commands: Any) -> None:
    keys = commands.add_parser("keys", help="API keys of `campaign serve`: create, list, revoke")
    actions = keys.add_subparsers(title="actions", required=True, metavar="ACTION")

    create = actions.add_parser("create", help="make a key and print it, this once (only its hash is kept)")
    create.add_argument("name", help="a unique name: who or what uses the key")
    create.add_argument(
        "--rate",
        type=float,
        metavar="N",
        help="messages per second the key may send, per `campaign serve` process (default: no limit)",
    )
    create.add_argument("--json", action="store_true", help="print one JSON object")
    create.set_defaults(run=_create)

    listing = actions.add_parser("list", help="every key's name, id, rate and creation (never the key)")
    listing.add_argument("--json", action="store_true", help="one JSON array")
    listing.set_defaults(run=_list)

    revoke = actions.add_parser(
        "revoke", help="remove a key; `campaign serve` refuses it within its cache time (5 s by default)"
    )
    revoke.add_argument("key", metavar="NAME|ID")
    revoke.set_defaults(run=_revoke)


def _store() -> ApiKeyStore:
    return ApiKeyStore(connect.redis_client())


def _create(args: argparse.Namespace) -> int:
    record, key = _store().create(args.name, args.rate)
    if args.json:
        print(msgspec.json.encode(msgspec.structs.asdict(record) | {"key": key}).decode())
        return 0
    print(key)
    print(
        f"API key {record.name!r} ({record.id}) created; it is shown this once: keep it now",
        file=sys.stderr,
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    records = _store().all()
    if args.json:
        print(msgspec.json.encode(records).decode())
        return 0
    print(f"{'NAME':<24} {'ID':<16} {'RATE':>10}  CREATED")
    for record in records:
        rate = "-" if record.rate is None else f"{record.rate:g}/s"
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created_at))
        print(f"{record.name:<24} {record.id:<16} {rate:>10}  {created}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    record = _store().revoke(args.key)
    print(f"revoked API key {record.name!r} ({record.id})", file=sys.stderr)
    return 0
