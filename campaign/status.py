"""`campaign status|list`: one campaign's state and counts (once, or followed live with --watch), or the
newest campaigns', as text or JSON."""

from __future__ import annotations

import argparse
import functools
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from campaign import connect, watch
from campaign.arguments import positive, seconds
from schemas.campaign import CampaignState
from schemas.errors import InputError

if TYPE_CHECKING:
    from producer.control import CampaignStatus

# The states of a scheduled campaign that goes to Kaleyra at its release unless cancelled before.
_WAITING_FOR_RELEASE = (CampaignState.QUEUED, CampaignState.SCHEDULED, CampaignState.RUNNING)


TRACES_SHOWN = 5  # the most frequent status traces of a campaign's delivery reports


def add_parsers(commands: Any) -> None:
    status = commands.add_parser("status", help="show a campaign's state and exact counts")
    status.add_argument("campaign_id")
    status.add_argument(
        "--json", action="store_true", help="print one JSON object (with --watch: one a line)"
    )
    status.add_argument(
        "--watch",
        action="store_true",
        help="follow it until it is finished: progress, rate, ETA, outcomes, failures by code, delivery "
        "(a live view on a terminal, a line per interval elsewhere; Ctrl-C stops watching, exit 130)",
    )
    status.add_argument(
        "--interval",
        type=seconds,
        metavar="S",
        help=f"seconds between readings with --watch (default {watch.DEFAULT_INTERVAL_S:g})",
    )
    status.set_defaults(run=_status)

    listing = commands.add_parser("list", help="the newest campaigns with their state and counts")
    listing.add_argument("--limit", type=positive, default=20, help="how many (default 20)")
    listing.add_argument(
        "--state", choices=[state.value for state in CampaignState], help="only campaigns in this state"
    )
    listing.add_argument("--json", action="store_true", help="one JSON array of status objects")
    listing.set_defaults(run=_list)


def _status(args: argparse.Namespace) -> int:
    if args.interval is not None and not args.watch:
        raise InputError("--interval is the time between readings of --watch: give --watch too")
    campaigns = connect.campaigns()
    if args.watch:
        watch.follow(
            functools.partial(campaigns.status, args.campaign_id),
            sys.stdout,
            interval_s=watch.DEFAULT_INTERVAL_S if args.interval is None else args.interval,
            as_json=args.json,
        )
        return 0
    status = campaigns.status(args.campaign_id)
    if args.json:
        print(msgspec.json.encode(status).decode())
        return 0
    label = f"{status.type}, {status.name}" if status.name else status.type
    print(f"campaign {status.campaign_id} ({label}): {status.state}")
    _print_progress_notes(status)
    _print_counts(status)
    return 0


def _print_progress_notes(status: CampaignStatus) -> None:
    """What holds the campaign back, or when it goes, when anything does."""
    if status.held_reason:
        print(f"  held: {status.held_reason}; nothing is failed for it, and sending resumes by itself once")
        print("  the gateway takes the account's requests again", end="")
        print(" (a fixed key or SID: restart the workers with it)" if "KALEYRA" in status.held_reason
              or "API key" in status.held_reason else "")  # fmt: skip
    if (daily := status.daily_cap) is not None and daily.used >= daily.cap and status.pending:
        print(f"  waiting: the account sent its daily cap ({daily.cap:,}) today; it sends again at 00:00 UTC")
    if status.paused_reason:
        print(f"  {status.paused_reason} (`campaign resume {status.campaign_id}`)")
    if status.idle_for is not None:
        idle = watch.duration(status.idle_for)
        print(f"  no worker has taken a job of it for {idle}: is `campaign worker` "
              "running (with this REDIS_URL)? Or its queue is behind other campaigns")  # fmt: skip
    if status.scheduled_for and status.release_at:
        release = datetime.fromtimestamp(status.release_at, UTC).isoformat(timespec="seconds")
        # Said only while it is so: not of a campaign paused, ended, or gone to Kaleyra already.
        ahead = status.state in _WAITING_FOR_RELEASE and status.release_at > datetime.now(UTC).timestamp()
        when = f"; goes to Kaleyra from {release} (cancel before then)" if ahead else ""
        print(f"  scheduled for {status.scheduled_for}{when}")
    if status.publishing:
        print("  still publishing: the total grows as the file is read")
    elif status.publisher_lost:
        print("  its producer stopped before the end of the file: the rest was not published")


def _print_counts(status: CampaignStatus) -> None:
    print(f"  total {status.total}: submitted {status.submitted}, failed {status.failed}")
    print(f"  unknown {status.unknown}, cancelled {status.cancelled}, pending {status.pending}")
    if status.state == CampaignState.CANCELLED and status.pending:
        print("  the pending ones are counted cancelled as workers next look at their jobs (within a minute)")
    print(
        f"  skipped at publish: invalid {status.invalid}, duplicates {status.duplicates}, "
        f"suppressed {status.suppressed}"
    )
    print(f"  segments: {status.segments}")
    if status.waiting_for_window and status.window_opens_at:
        opens = datetime.fromtimestamp(status.window_opens_at, UTC).isoformat(timespec="minutes")
        print(f"  waiting for their sending window: {status.waiting_for_window} (next opens {opens})")
    print(f"  requests retried: {status.retried}; recipients resent after a lost worker: {status.resent}")
    if status.republished:
        print(f"  republished by `campaign resend`: {status.republished}")
    if status.resent_undelivered:
        print(f"  undelivered, resent by `campaign resend --undelivered`: {status.resent_undelivered}")
    if status.failures:
        print("  failures: " + ", ".join(f"{code} x{n}" for code, n in sorted(status.failures.items())))
    if status.last_error and status.last_error_at:
        when = datetime.fromtimestamp(status.last_error_at, UTC).isoformat(timespec="seconds")
        print(f"  last gateway error: {status.last_error} ({when})")
    _print_delivery(status)
    if told := status.callbacks:
        line = f"  callbacks: sent {told.sent}, pending {told.pending}, given up {told.failed}"
        line += f" ({told.attempts} attempts)"
        print(line + (f"; last error: {told.last_error}" if told.last_error else ""))


def _print_delivery(status: CampaignStatus) -> None:
    """Delivery reports, once any final one came."""
    if not (status.delivered or status.undelivered or status.dlr_failed):
        return
    print(f"  delivered {status.delivered}, undelivered {status.undelivered}, failed after submission "
          f"{status.dlr_failed}, no final report yet {status.delivery_pending}")  # fmt: skip
    if status.traces:
        top = list(status.traces.items())[:TRACES_SHOWN]
        print("  status traces: " + ", ".join(f"{trace} x{n}" for trace, n in top))
    if status.delivery_p50_s is not None:
        p90 = f"within {status.delivery_p90_s:g}s" if status.delivery_p90_s is not None else "took over a day"
        print(f"  time to delivery: half within {status.delivery_p50_s:g}s, nine in ten {p90}")


def _list(args: argparse.Namespace) -> int:
    listed = connect.campaigns().list_campaigns(limit=args.limit, state=args.state)
    if args.json:
        print(msgspec.json.encode(listed).decode())
        return 0
    if not listed:
        print(f"no {args.state} campaigns" if args.state else "no campaigns")
    for status in listed:
        created = datetime.fromtimestamp(status.created_at or 0, UTC).isoformat(timespec="seconds")
        settled = watch.settled_of(status)
        progress = (
            f"{settled}/{status.total} ({100 * settled / status.total:.0f}%)" if status.total else "0/0"
        )
        name = f" {status.name!r}" if status.name else ""  # repr: a name is user input, shown escaped
        print(
            f"{status.campaign_id}  {created}  {status.type:<7} {status.state:<9} {progress:>16} settled: "
            f"{status.submitted} submitted, {status.failed} failed, {status.unknown} unknown, "
            f"{status.cancelled} cancelled, {status.pending} pending{name}"
        )
    return 0
