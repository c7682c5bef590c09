"""`campaign send|estimate`: read a recipients file, publish it (or only count it), and say what was done."""

from __future__ import annotations

import argparse
import functools
import sys
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec

from campaign import connect, watch
from campaign.arguments import price
from campaign.plural import plural
from schemas.campaign import CampaignState
from schemas.errors import InputError
from schemas.window import DEFAULT_WINDOW

if TYPE_CHECKING:
    from producer import Campaigns
    from producer.publish import PublishResult


def add_parsers(commands: Any) -> None:
    send = commands.add_parser("send", help="validate and publish a campaign")
    _add_campaign_options(send)
    send.add_argument(
        "--dry-run",
        action="store_true",
        help="read and count everything (recipients, encodings, segments, cost) and publish nothing",
    )
    send.add_argument(
        "--wait",
        action="store_true",
        help="then follow it to its end (progress on stderr): exit 0 completed, 1 failed or cancelled; "
        "with --json, the JSON printed is its final status",
    )
    send.set_defaults(run=_send)

    estimate = commands.add_parser(
        "estimate", help="what a campaign would cost: recipients, encodings, segments; publishes nothing"
    )
    _add_campaign_options(estimate)
    estimate.set_defaults(run=_send, dry_run=True)


def _add_campaign_options(parser: argparse.ArgumentParser) -> None:
    """The options of `send`, shared by `estimate`."""
    _add_message_options(parser)
    _add_delivery_options(parser)


def _add_message_options(parser: argparse.ArgumentParser) -> None:
    """Who gets what, from whom."""
    parser.add_argument(
        "--recipients",
        required=True,
        metavar="PATH|-",
        help="CSV with a header and a 'to' column, or JSON lines with a 'to' key; - for stdin",
    )
    parser.add_argument("--sender", required=True, help="approved sender ID (the 'from' field)")
    parser.add_argument(
        "--type", required=True, metavar="MKT|TXN|OTP|DEFAULT|TXND", help="Kaleyra route type"
    )
    parser.add_argument("--body", required=True, help="message text, at most 4000 characters")
    parser.add_argument(
        "--prefix", help="country prefix for numbers without one, e.g. +91 (default: CAMPAIGN_DEFAULT_PREFIX)"
    )
    parser.add_argument("--unicode", metavar="auto|0|1", help="default: CAMPAIGN_DEFAULT_UNICODE, else auto")
    parser.add_argument("--template-id", help="DLT template ID (India)")
    parser.add_argument("--entity-id", help="DLT entity ID (India)")
    parser.add_argument("--callback-profile-id", help="Kaleyra's callback profile for delivery reports")
    parser.add_argument(
        "--callback-url",
        metavar="URL",
        help="POST the campaign's end and its messages' final delivery reports here, signed with "
        "CAMPAIGN_CALLBACK_SECRET (docs/callbacks.md)",
    )


def _add_delivery_options(parser: argparse.ArgumentParser) -> None:
    """When and how it is sent, what is shown, and what the list may hold."""
    parser.add_argument(
        "--at", metavar="ISO8601", help="schedule: 15 minutes to 3 months ahead, with an offset"
    )
    parser.add_argument("--name", help="a name to recognise the campaign by")
    parser.add_argument(
        "--expires-in",
        metavar="DURATION",
        help="e.g. 30m, 2h, 1d: past it, what is not sent yet is cancelled, not sent late",
    )
    parser.add_argument(
        "--on-unknown",
        default="hold",
        metavar="hold|resend",
        help="a chunk whose worker vanished mid-send: report it unknown (hold, the default) "
        "or send it again, risking duplicates (resend)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    parser.add_argument(
        "--send-window",
        nargs="?",
        const=DEFAULT_WINDOW,
        metavar="HH:MM-HH:MM",
        help=f"quiet hours for MKT/DEFAULT: send only inside this daily window of the recipient's local "
        f"time, its zone inferred from the number (alone: {DEFAULT_WINDOW}); chunks outside it wait",
    )
    parser.add_argument(
        "--flash",
        action="store_true",
        help="flash SMS: shown at once and not stored; through Kaleyra's /sms, 100 numbers a request",
    )
    parser.add_argument(
        "--price-per-segment",
        type=price,
        metavar="PRICE",
        help="show the cost, segments x PRICE (with --dry-run, estimate or a real send)",
    )
    parser.add_argument(
        "--max-invalid",
        metavar="SHARE",
        help="refuse the list, publishing nothing, when more of its rows than this are invalid numbers, "
        "e.g. 5%% or 0.05 (default: CAMPAIGN_MAX_INVALID, else 5%%); 100%% refuses none",
    )


def _send(args: argparse.Namespace) -> int:
    dry_run, wait = args.dry_run, getattr(args, "wait", False)
    if wait and dry_run:
        raise InputError("--wait with --dry-run: nothing is published to wait for")
    options = dict(
        prefix=args.prefix, unicode=args.unicode, template_id=args.template_id, entity_id=args.entity_id,
        callback_profile_id=args.callback_profile_id, at=args.at, name=args.name,
        on_unknown=args.on_unknown, expires_in=args.expires_in, flash=args.flash,
        send_window=args.send_window, callback_url=args.callback_url,
    )  # fmt: skip

    def tell_sending(cid: str) -> None:  # its id, to watch or cancel it while the file is read
        doing = f"queued for {args.at}" if args.at else "sending"
        print(f"campaign {cid}: {doing} while the rest of the file is read (`campaign status {cid}`)",
              file=sys.stderr)  # fmt: skip

    campaigns = connect.campaigns()
    result = campaigns.send_campaign(
        args.recipients, sender=args.sender, type=args.type, body=args.body, max_invalid=args.max_invalid,
        dry_run=dry_run, on_visible=tell_sending, **options,
    )  # fmt: skip
    _print_skipped(result, dry_run)
    per_segment = args.price_per_segment
    cost = None if per_segment is None else per_segment * result.segments
    if wait:
        if not args.json:
            _print_published(result, cost)
            sys.stdout.flush()  # its id reaches a reader now, not when the campaign ends
        return _wait(campaigns, result.campaign_id, as_json=args.json)
    if args.json:
        # A dry run's counts only: nothing was published under its campaign id.
        shown = msgspec.structs.asdict(result.counts() if dry_run else result)
        shown |= {"cost": str(cost)} if cost is not None else {}
        print(msgspec.json.encode(shown).decode())
    elif dry_run:
        _print_estimate(result, per_segment, cost)
    else:
        _print_published(result, cost)
    return 0


def _wait(campaigns: Campaigns, campaign_id: str, *, as_json: bool) -> int:
    """Follow the campaign on stderr until it ends: 0 completed, 1 failed or cancelled."""
    try:
        final = watch.follow(functools.partial(campaigns.status, campaign_id), sys.stderr)
    except KeyboardInterrupt:
        print(f"campaign {campaign_id}: stopped waiting; it goes on (`campaign status {campaign_id} "
              f"--watch`, `campaign cancel {campaign_id}`)", file=sys.stderr)  # fmt: skip
        raise
    if as_json:
        print(msgspec.json.encode(final).decode())
    return 0 if final.state == CampaignState.COMPLETED else 1


def _print_skipped(result: PublishResult, dry_run: bool) -> None:
    for row in result.invalid_rows:
        print(f"campaign: skipped line {row.line}: '{row.value}' {row.reason}", file=sys.stderr)  # escaped
    if result.invalid > len(result.invalid_rows) and not dry_run:
        print(
            f"campaign: ... {result.invalid - len(result.invalid_rows)} more; "
            f"see `campaign invalid {result.campaign_id}`",
            file=sys.stderr,
        )


def _skipped(result: PublishResult) -> str:
    duplicates = plural(result.duplicates, "duplicate")
    return f"{result.invalid} invalid, {duplicates}, {result.suppressed} suppressed"


def _print_estimate(result: PublishResult, per_segment: Decimal | None, cost: Decimal | None) -> None:
    encodings = ", ".join(f"{n} {name}" for name, n in sorted(result.encodings.items())) or "none"
    segments = plural(result.segments, "segment")
    print(f"{plural(result.total, 'recipient')} ({_skipped(result)}); nothing was published")
    print(f"encodings: {encodings}; {segments}")
    if cost is not None:
        print(f"cost: {cost} ({segments} x {per_segment})")


def _print_published(result: PublishResult, cost: Decimal | None) -> None:
    print(result.campaign_id)
    print(
        f"{plural(result.total, 'recipient')} in {plural(result.jobs, 'job')} ({_skipped(result)}), "
        f"{plural(result.segments, 'segment')}"
        + (f" costing {cost}" if cost is not None else "")
        + f", {result.state}",
        file=sys.stderr,
    )
