"""`campaign suppress add|remove|import|export|count|renormalise`: the account's do-not-send list."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from campaign import connect
from campaign.plural import plural


def add_parser(commands: Any) -> None:
    suppress = commands.add_parser(
        "suppress",
        help="the account's suppression list: numbers no campaign sends to (applied at publish)",
        description="Numbers are normalised as in sending; the list belongs to KALEYRA_SID's account.",
    )
    actions = suppress.add_subparsers(title="actions", required=True, metavar="ACTION")
    for name, help_text in (("add", "add numbers"), ("remove", "remove numbers")):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("numbers", nargs="+", metavar="NUMBER")
        _prefix_option(action)
        action.set_defaults(run=_run, action=name)
    imported = actions.add_parser(
        "import", help="add every number of a CSV ('to' column) or JSON-lines ('to' key) file"
    )
    imported.add_argument("path", metavar="PATH|-")
    _prefix_option(imported)
    imported.add_argument(
        "--max-invalid",
        metavar="SHARE",
        help="refuse the file when more of its rows than this are invalid numbers, e.g. 5%% or 0.05 "
        "(default: CAMPAIGN_MAX_INVALID, else 5%%); nothing is added then",
    )
    imported.set_defaults(run=_run, action="import")
    for name, help_text in (("export", "print every listed number, one per line"), ("count", "how many")):
        actions.add_parser(name, help=help_text).set_defaults(run=_run, action=name)
    actions.add_parser(
        "renormalise",
        help="after an upgrade: add the form this version reads of each number an older one listed",
        description="A list written by an older version may hold numbers in forms this one never "
        "produces (+49015123456789 for +49 (0)15123456789; +3931234567 for the Italian 3931234567 "
        "with --prefix +39), and marketing campaigns are refused against it until this is run. For "
        "every listed number, add its reading now (+4915123456789) and its digits read as a national "
        "number of its country (+393931234567), when valid. Nothing is removed; safe to run again.",
    ).set_defaults(run=_run, action="renormalise")


def _prefix_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--prefix", help="country prefix for numbers without one, e.g. +91 (default: CAMPAIGN_DEFAULT_PREFIX)"
    )


def _run(args: argparse.Namespace) -> int:
    from producer import suppression
    from producer.invalid import Allowance
    from producer.recipients import open_recipients
    from producer.spec import check_max_invalid, check_prefix

    settings, client = connect.settings_and_client()
    account = settings.sid or "default"
    prefix = check_prefix(getattr(args, "prefix", None) or settings.default_prefix)
    if args.action == "add":
        added = suppression.add(client, settings.sid, args.numbers, prefix)
        print(f"account {account}: {added} added, {suppression.count(client, settings.sid)} suppressed")
    elif args.action == "remove":
        removed = suppression.remove(client, settings.sid, args.numbers, prefix)
        print(f"account {account}: {removed} removed, {suppression.count(client, settings.sid)} suppressed")
    elif args.action == "import":
        allowance = Allowance.of(settings, check_max_invalid(args.max_invalid))
        with open_recipients(args.path) as rows:
            result = suppression.import_rows(client, settings.sid, rows, prefix, allowance)
        for row in result.invalid_rows:
            print(f"campaign: skipped line {row.line}: {row.value!r} {row.reason}", file=sys.stderr)
        read, skipped = plural(result.read, "number"), plural(result.invalid, "invalid row")
        print(
            f"account {account}: {result.added} added from {read} ({skipped} skipped), "
            f"{suppression.count(client, settings.sid)} suppressed"
        )
    elif args.action == "renormalise":
        renormalised = suppression.renormalise(client, settings.sid)
        read = plural(renormalised.read, "number")
        print(
            f"account {account}: {read} read, {plural(renormalised.added, 'form')} added, "
            f"{suppression.count(client, settings.sid)} suppressed"
        )
    elif args.action == "export":
        out = sys.stdout
        out.write("to\n")
        for number in suppression.export(client, settings.sid):
            out.write(number + "\n")
    else:
        print(suppression.count(client, settings.sid))
    return 0
