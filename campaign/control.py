"""`campaign pause|resume|cancel|purge|resend|limit`: steer or remove a campaign; the account's limit."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

import msgspec

from campaign import connect
from campaign.plural import plural
from schemas.errors import InputError, SettingsError

if TYPE_CHECKING:
    from producer.control import DailyCap


def add_parsers(commands: Any) -> None:
    for name, help_text in (
        ("pause", "stop sending within one chunk; queued work waits"),
        ("resume", "continue a paused campaign where it stopped"),
        ("cancel", "stop for good; what is left is counted as cancelled"),
    ):
        steer = commands.add_parser(name, help=help_text)
        steer.add_argument("campaign_id")
        steer.set_defaults(run=_steer, action=name)

    purge = commands.add_parser(
        "purge",
        help="remove a completed, failed or cancelled campaign from Redis now (not at CAMPAIGN_RETENTION)",
    )
    which = purge.add_mutually_exclusive_group(required=True)
    which.add_argument("campaign_id", nargs="?")
    which.add_argument(
        "--apply-retention",
        action="store_true",
        help="rather than one campaign: let every finished campaign that has no expiry (finished before "
        "retention existed) expire CAMPAIGN_RETENTION after it finished, removing those past it",
    )
    purge.add_argument(
        "--force",
        action="store_true",
        help="also a cancelled one whose workers still count recipients cancelled",
    )
    purge.set_defaults(run=_purge)

    resend = commands.add_parser(
        "resend",
        help="publish a campaign's failed and/or unknown recipients again (says how many may receive "
        "the message twice), or those undelivered for a temporary reason",
    )
    resend.add_argument("campaign_id")
    resend.add_argument("--failed", action="store_true", help="recipients that failed (with a code)")
    resend.add_argument(
        "--unknown", action="store_true", help="recipients whose outcome is unknown: they may get it twice"
    )
    resend.add_argument(
        "--undelivered",
        action="store_true",
        help="recipients whose final delivery report is undelivered for a temporary reason (absent, "
        "switched off, busy, network error, expired); on its own",
    )
    resend.add_argument("--json", action="store_true", help="print one JSON object")
    resend.set_defaults(run=_resend)

    limit = commands.add_parser(
        "limit",
        help="show or set the account's rate limit (messages per second), shared by every worker",
    )
    limit.add_argument(
        "per_second", nargs="?", metavar="SET", help="messages per second, or off; running campaigns follow"
    )
    limit.add_argument(
        "--daily",
        metavar="N",
        help="the most messages the account sends a UTC day, or off; once reached, campaigns and single "
        "messages wait for the next day (today's use counts against a new cap)",
    )
    limit.set_defaults(run=_limit)


def _steer(args: argparse.Namespace) -> int:
    state = getattr(connect.campaigns(), args.action)(args.campaign_id)
    print(f"campaign {args.campaign_id}: {state}")
    return 0


def _purge(args: argparse.Namespace) -> int:
    if args.apply_retention:
        return _apply_retention(args)
    state = connect.campaigns().purge(args.campaign_id, force=args.force)
    print(f"campaign {args.campaign_id}: purged ({state})")
    return 0


def _apply_retention(args: argparse.Namespace) -> int:
    from producer.control import apply_retention

    if args.force:
        raise InputError("--force purges one campaign now: give its ID rather than --apply-retention")
    settings, client = connect.settings_and_client()
    done = apply_retention(client, retention_s=settings.retention_s)
    print(
        f"retention applied to {plural(done.applied + done.removed, 'finished campaign')} without an expiry "
        f"({done.removed} past it: removed now)"
    )
    return 0


def _resend(args: argparse.Namespace) -> int:
    from producer.job_queue import job_broker
    from producer.resend import resend

    settings, client = connect.settings_and_client()
    result = resend(
        client,
        job_broker(client),
        settings,
        args.campaign_id,
        failed=args.failed,
        unknown=args.unknown,
        undelivered=args.undelivered,
    )
    if args.json:
        print(msgspec.json.encode(result).decode())
    elif not result.republished:
        left_out = f" ({result.suppressed} on the suppression list)" if result.suppressed else ""
        print(f"campaign {result.campaign_id}: nothing to resend{left_out}")
    elif args.undelivered:
        print(
            f"campaign {result.campaign_id}: republished "
            f"{plural(result.republished, 'undelivered recipient')} in {plural(result.jobs, 'job')}, "
            f"{result.state}; {result.suppressed} left out as suppressed"
        )
    else:
        print(
            f"campaign {result.campaign_id}: republished {plural(result.republished, 'recipient')} "
            f"({result.failed} failed, {result.unknown} unknown) in {plural(result.jobs, 'job')}, "
            f"{result.state}; {result.may_duplicate} may receive the message twice"
        )
    return 0


def _limit(args: argparse.Namespace) -> int:
    from producer.control import (
        account_daily_cap,
        account_rate_limit,
        set_account_daily_cap,
        set_account_rate_limit,
    )

    settings, client = connect.settings_and_client()
    if not settings.sid:
        raise SettingsError("KALEYRA_SID must be set: the limit belongs to the account")
    if args.per_second is not None:
        set_account_rate_limit(client, settings.sid, args.per_second)
    if args.daily is not None:
        set_account_daily_cap(client, settings.sid, args.daily)
    limit = account_rate_limit(client, settings.sid)
    shown = f"{plural(limit, 'message')} per second" if limit else "no rate limit"
    daily = account_daily_cap(client, settings.sid)
    print(f"account {settings.sid}: {shown}" + (f"; {daily_text(daily)}" if daily else ""))
    return 0


def daily_text(daily: DailyCap) -> str:
    """The account's daily cap and today's use of it, in words."""
    reached = "; reached: sending waits for the next day" if daily.used >= daily.cap else ""
    return f"daily cap {daily.cap:,}, {daily.used:,} used today (UTC; resets at 00:00){reached}"
