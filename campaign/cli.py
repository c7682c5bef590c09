"""`campaign send|estimate|status|pause|resume|cancel|resend|limit|invalid|suppress|worker|simulate|demo`.

Exit codes: 0 done; 2 the input was refused (one line on stderr, nothing published); 1 anything else.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

import msgspec
import redis

from campaign import suppress
from campaign.plural import plural
from schemas.campaign import CampaignState
from schemas.errors import InputError, SettingsError
from schemas.masking import redact_url
from schemas.settings import Settings
from schemas.window import DEFAULT_WINDOW

if TYPE_CHECKING:
    from producer import Campaigns

WORKER_SHUTDOWN_TIMEOUT_MS = 60_000
# An idle queue is polled at least this often (dramatiq backs off to 1 s by default): an OTP, or a
# campaign published to idle workers, waits at most this long to be picked up.
IDLE_POLL_MS = 100
EXIT_REFUSED = 2
EXIT_FAILED = 1
# The reader of stdout went away (`campaign report ID | head`): the status a shell gives a command
# killed by SIGPIPE, as `cat` would be. Not 0: the output was cut short, and `set -o pipefail`
# should see it as it sees any other tool's.
EXIT_BROKEN_PIPE = 128 + 13


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.run
    try:
        code = command(args)
        sys.stdout.flush()  # a reader gone shows here rather than in Python's own flush at exit
        return code
    except BrokenPipeError:
        # Quietly, as the Python docs' note on SIGPIPE does: stdout goes to /dev/null so that the
        # flush at exit does not fail on the closed pipe again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except InputError as e:
        print(f"campaign: refused: {e}", file=sys.stderr)
        return EXIT_REFUSED
    except redis.RedisError as e:
        print(f"campaign: Redis at {_redis_address()} failed: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="campaign",
        description="Bulk SMS campaigns through Kaleyra's /sms/json API, queued on Redis, "
        "sent by dramatiq workers.",
        epilog="Environment: REDIS_URL, KALEYRA_API_KEY, KALEYRA_SID, KALEYRA_REGION, KALEYRA_BASE_URL, "
        "CAMPAIGN_DEFAULT_PREFIX, CAMPAIGN_DEFAULT_UNICODE (see docs/operations.md).",
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    send = commands.add_parser("send", help="validate and publish a campaign")
    _add_campaign_options(send)
    send.add_argument(
        "--dry-run",
        action="store_true",
        help="read and count everything (recipients, encodings, segments, cost) and publish nothing",
    )
    send.set_defaults(run=_send)

    estimate = commands.add_parser(
        "estimate", help="what a campaign would cost: recipients, encodings, segments; publishes nothing"
    )
    _add_campaign_options(estimate)
    estimate.set_defaults(run=_send, dry_run=True)

    status = commands.add_parser("status", help="show a campaign's state and exact counts")
    status.add_argument("campaign_id")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(run=_status)

    listing = commands.add_parser("list", help="the newest campaigns with their state and counts")
    listing.add_argument("--limit", type=_positive, default=20, help="how many (default 20)")
    listing.add_argument("--json", action="store_true", help="one JSON array of status objects")
    listing.set_defaults(run=_list)

    for name, help_text in (
        ("pause", "stop sending within one chunk; queued work waits"),
        ("resume", "continue a paused campaign where it stopped"),
        ("cancel", "stop for good; what is left is counted as cancelled"),
    ):
        steer = commands.add_parser(name, help=help_text)
        steer.add_argument("campaign_id")
        steer.set_defaults(run=_steer, action=name)

    resend = commands.add_parser(
        "resend",
        help="publish a campaign's failed and/or unknown recipients again; "
        "says how many may receive the message twice",
    )
    resend.add_argument("campaign_id")
    resend.add_argument("--failed", action="store_true", help="recipients that failed (with a code)")
    resend.add_argument(
        "--unknown", action="store_true", help="recipients whose outcome is unknown: they may get it twice"
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
    limit.set_defaults(run=_limit)

    invalid = commands.add_parser(
        "invalid", help="list the rows skipped as invalid, as CSV: line,value,reason"
    )
    invalid.add_argument("campaign_id")
    invalid.set_defaults(run=_invalid)

    report = commands.add_parser(
        "report", help="one CSV row per recipient: line, number, outcome, code, message_id (streamed)"
    )
    report.add_argument("campaign_id")
    report.add_argument("--csv", action="store_true", help="CSV on stdout (the default and only format)")
    report.add_argument(
        "--full-numbers", action="store_true", help="show numbers in full (masked by default)"
    )
    report.set_defaults(run=_report)

    suppress.add_parser(commands)

    worker = commands.add_parser("worker", help="run dramatiq workers that send queued campaigns")
    worker.add_argument("--processes", type=_positive, default=os.cpu_count() or 1)
    worker.add_argument("--threads", type=_positive, default=8)
    worker.add_argument(
        "--in-flight",
        type=_positive,
        help="bulk requests to Kaleyra at once per process (CAMPAIGN_MAX_IN_FLIGHT; default: as many "
        "as threads); with a few more threads than this, jobs claim, log and settle while others' "
        "requests are out",
    )
    worker.set_defaults(run=_worker)

    simulate = commands.add_parser(
        "simulate", help="run the Kaleyra gateway simulator (demos, staging, load tests)"
    )
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=8088)
    simulate.add_argument("--e403-rate", type=_rate, default=0.0, help="share of requests answered with E403")
    simulate.add_argument("--latency-ms", type=float, default=0.0, help="delay before every answer")
    simulate.add_argument(
        "--slow-reply-rate",
        type=_rate,
        default=0.0,
        metavar="R",
        help="share of accepted requests whose answer is held back (recorded as sent, answered late)",
    )
    simulate.add_argument(
        "--slow-reply-ms",
        type=float,
        default=0.0,
        metavar="N",
        help="how long a slow reply is held",
    )
    simulate.add_argument("--seed", type=int, help="make the injected faults repeatable")
    simulate.set_defaults(run=_simulate)

    demo = commands.add_parser(
        "demo", help="everything in one process: fakeredis, the simulator and a worker"
    )
    demo.add_argument("--recipients", type=_positive, default=10_000)
    demo.add_argument("--e403-rate", type=_rate, default=0.2)
    demo.add_argument("--latency-ms", type=float, default=5.0)
    demo.add_argument("--threads", type=_positive, default=8)
    demo.add_argument(
        "--events", metavar="PATH", help="where the worker's JSON log goes (default: a temp file)"
    )
    demo.set_defaults(run=_demo)
    return parser


def _add_campaign_options(parser: argparse.ArgumentParser) -> None:
    """The options of `send`, shared by `estimate`."""
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
    parser.add_argument("--callback-profile-id", help="callback profile for delivery webhooks")
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
        type=_price,
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
    dry_run = args.dry_run
    campaigns = _campaigns()
    options = dict(
        prefix=args.prefix, unicode=args.unicode, template_id=args.template_id, entity_id=args.entity_id,
        callback_profile_id=args.callback_profile_id, at=args.at, name=args.name,
        on_unknown=args.on_unknown, expires_in=args.expires_in, flash=args.flash,
        send_window=args.send_window,
    )  # fmt: skip

    def tell_sending(cid: str) -> None:  # its id, to watch or cancel it while the file is read
        doing = f"queued for {args.at}" if args.at else "sending"
        print(f"campaign {cid}: {doing} while the rest of the file is read (`campaign status {cid}`)",
              file=sys.stderr)  # fmt: skip

    result = campaigns.send_campaign(
        args.recipients, sender=args.sender, type=args.type, body=args.body, max_invalid=args.max_invalid,
        dry_run=dry_run, on_visible=tell_sending, **options,
    )  # fmt: skip
    for row in result.invalid_rows:
        print(f"campaign: skipped line {row.line}: '{row.value}' {row.reason}", file=sys.stderr)  # escaped
    if result.invalid > len(result.invalid_rows) and not dry_run:
        print(
            f"campaign: ... {result.invalid - len(result.invalid_rows)} more; "
            f"see `campaign invalid {result.campaign_id}`",
            file=sys.stderr,
        )
    price = args.price_per_segment
    cost = None if price is None else price * result.segments
    if args.json:
        shown = msgspec.structs.asdict(result) | ({"cost": str(cost)} if cost is not None else {})
        if dry_run:
            del shown["campaign_id"]  # nothing was published under it
        print(msgspec.json.encode(shown).decode())
        return 0
    duplicates = plural(result.duplicates, "duplicate")
    skipped = f"{result.invalid} invalid, {duplicates}, {result.suppressed} suppressed"
    encodings = ", ".join(f"{n} {name}" for name, n in sorted(result.encodings.items())) or "none"
    recipients, segments = plural(result.total, "recipient"), plural(result.segments, "segment")
    if dry_run:
        print(f"{recipients} ({skipped}); nothing was published")
        print(f"encodings: {encodings}; {segments}")
        if cost is not None:
            print(f"cost: {cost} ({segments} x {price})")
        return 0
    print(result.campaign_id)
    print(
        f"{recipients} in {plural(result.jobs, 'job')} ({skipped}), {segments}"
        + (f" costing {cost}" if cost is not None else "")
        + f", {result.state}",
        file=sys.stderr,
    )
    return 0


def _status(args: argparse.Namespace) -> int:
    status = _campaigns().status(args.campaign_id)
    if args.json:
        print(msgspec.json.encode(status).decode())
        return 0
    label = f"{status.type}, {status.name}" if status.name else status.type
    print(f"campaign {status.campaign_id} ({label}): {status.state}")
    if status.held_reason:
        print(f"  held: {status.held_reason}; nothing is failed for it, and sending resumes by itself once")
        print("  the gateway takes the account's requests again", end="")
        print(" (a fixed key or SID: restart the workers with it)" if "KALEYRA" in status.held_reason
              or "API key" in status.held_reason else "")  # fmt: skip
    if status.idle_for is not None:
        print(f"  no worker has taken a job of it for {_duration(status.idle_for)}: is `campaign worker` "
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
    if status.failures:
        print("  failures: " + ", ".join(f"{code} x{n}" for code, n in sorted(status.failures.items())))
    if status.last_error and status.last_error_at:
        when = datetime.fromtimestamp(status.last_error_at, UTC).isoformat(timespec="seconds")
        print(f"  last gateway error: {status.last_error} ({when})")
    return 0


# The states of a scheduled campaign that goes to Kaleyra at its release unless cancelled before.
_WAITING_FOR_RELEASE = (CampaignState.QUEUED, CampaignState.SCHEDULED, CampaignState.RUNNING)


def _duration(seconds: float) -> str:
    """`42s`, `3m05s`, `2h10m`: how long, to a reader."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _steer(args: argparse.Namespace) -> int:
    state = getattr(_campaigns(), args.action)(args.campaign_id)
    print(f"campaign {args.campaign_id}: {state}")
    return 0


def _list(args: argparse.Namespace) -> int:
    listed = _campaigns().list_campaigns(limit=args.limit)
    if args.json:
        print(msgspec.json.encode(listed).decode())
        return 0
    if not listed:
        print("no campaigns")
    for status in listed:
        created = datetime.fromtimestamp(status.created_at or 0, UTC).isoformat(timespec="seconds")
        name = f" {status.name!r}" if status.name else ""
        print(
            f"{status.campaign_id}  {created}  {status.type:<7} {status.state:<9} "
            f"{status.submitted}/{status.total} submitted, {status.failed} failed, "
            f"{status.pending} pending{name}"
        )
    return 0


def _resend(args: argparse.Namespace) -> int:
    from producer.job_queue import job_broker
    from producer.resend import resend

    settings = Settings.from_environ()
    client = redis.Redis.from_url(settings.redis_url)
    result = resend(
        client,
        job_broker(client),
        settings,
        args.campaign_id,
        failed=args.failed,
        unknown=args.unknown,
    )
    if args.json:
        print(msgspec.json.encode(result).decode())
    elif not result.republished:
        print(f"campaign {result.campaign_id}: nothing to resend")
    else:
        print(
            f"campaign {result.campaign_id}: republished {plural(result.republished, 'recipient')} "
            f"({result.failed} failed, {result.unknown} unknown) in {plural(result.jobs, 'job')}, "
            f"{result.state}; {result.may_duplicate} may receive the message twice"
        )
    return 0


def _limit(args: argparse.Namespace) -> int:
    from producer.control import account_rate_limit, set_account_rate_limit

    settings = Settings.from_environ()
    if not settings.sid:
        raise SettingsError("KALEYRA_SID must be set: the limit belongs to the account")
    client = redis.Redis.from_url(settings.redis_url)
    if args.per_second is not None:
        set_account_rate_limit(client, settings.sid, args.per_second)
    limit = account_rate_limit(client, settings.sid)
    shown = f"{plural(limit, 'message')} per second" if limit else "no rate limit"
    print(f"account {settings.sid}: {shown}")
    return 0


def _invalid(args: argparse.Namespace) -> int:
    from producer.control import campaign_status, invalid_rows

    client = _client()
    campaign_status(client, args.campaign_id)  # refuses an unknown id
    print("line,value,reason")
    for row in invalid_rows(client, args.campaign_id):
        print(f"{row.line},{_csv_field(row.value)},{_csv_field(row.reason)}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from producer.control import campaign_status
    from producer.report import COLUMNS, report_rows

    client = _client()
    campaign_status(client, args.campaign_id)  # refuses an unknown id
    out = sys.stdout
    out.write(",".join(COLUMNS) + "\n")
    for row in report_rows(client, args.campaign_id, full_numbers=args.full_numbers):
        out.write(
            f"{row.line},{_csv_field(row.number)},{row.outcome},{_csv_field(row.code)},{row.message_id}\n"
        )
    return 0


def _worker(args: argparse.Namespace) -> int:
    from redis_model.keys import LANES

    Settings.from_environ().require_credentials()  # refuse now, not once per chunk
    command = [
        sys.executable,
        "-m",
        "dramatiq",
        "worker.entrypoint",
        "--processes",
        str(args.processes),
        "--threads",
        str(args.threads),
        "--queues",
        *(lane.queue for lane in LANES),
        # In-flight chunks finish, and their jobs go back to the queue, within this bound.
        "--worker-shutdown-timeout",
        str(WORKER_SHUTDOWN_TIMEOUT_MS),
    ]
    if args.in_flight is not None:
        os.environ["CAMPAIGN_MAX_IN_FLIGHT"] = str(args.in_flight)
    os.environ.setdefault("dramatiq_worker_timeout", str(IDLE_POLL_MS))
    sys.stdout.flush()
    os.execv(sys.executable, command)


def _simulate(args: argparse.Namespace) -> int:
    from ops.simulator import SimulatorConfig, serve

    settings = Settings.from_environ()
    config = SimulatorConfig(
        api_key=settings.api_key,
        e403_rate=args.e403_rate,
        latency_ms=args.latency_ms,
        slow_reply_rate=args.slow_reply_rate,
        slow_reply_ms=args.slow_reply_ms,
        seed=args.seed,
    )
    serve(config, args.host, args.port)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from campaign.demo import run_demo

    return run_demo(
        recipients=args.recipients,
        e403_rate=args.e403_rate,
        latency_ms=args.latency_ms,
        threads=args.threads,
        events_path=args.events,
    )


def _client() -> redis.Redis:
    return redis.Redis.from_url(Settings.from_environ().redis_url)


def _campaigns() -> Campaigns:
    from producer import Campaigns

    settings = Settings.from_environ()
    return Campaigns(redis.Redis.from_url(settings.redis_url), settings)


def _redis_address() -> str:
    """REDIS_URL as messages show it: without its password."""
    try:
        return redact_url(Settings.from_environ().redis_url)
    except InputError:
        return "REDIS_URL"


def _csv_field(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\n\r') else value


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{raw!r} must be at least 1")
    return value


def _price(raw: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a price like 0.25") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"{raw!r} must be a price of 0 or more")
    return value


def _rate(raw: str) -> float:
    value = float(raw)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{raw!r} must be between 0 and 1")
    return value
