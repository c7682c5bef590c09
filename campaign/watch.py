"""Follow a campaign until it ends (`status --watch`, `send --wait`): a live view on a terminal, a plain
line per interval anywhere else (a pipe, a log file, CI)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

import msgspec
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from schemas.campaign import FINISHED_STATES

if TYPE_CHECKING:
    from producer.control import CampaignStatus

DEFAULT_INTERVAL_S = 1.0


@dataclass(frozen=True)
class Pace:
    """How fast a campaign settles: recipients a second over the last interval (None before a second
    reading), and the seconds left at that rate (None while nothing moves)."""

    rate: float | None = None
    eta_s: float | None = None


class PaceMeter:
    """The pace between one reading of a campaign's status and the one before it."""

    def __init__(self) -> None:
        self._last: tuple[int, float] | None = None  # settled recipients, and when they were read

    def read(self, status: CampaignStatus, now: float) -> Pace:
        settled = settled_of(status)
        last, self._last = self._last, (settled, now)
        if last is None or now <= last[1]:
            return Pace()
        rate = max(settled - last[0], 0) / (now - last[1])
        return Pace(rate=rate, eta_s=status.pending / rate if rate > 0 and status.pending else None)


def settled_of(status: CampaignStatus) -> int:
    """Recipients that ended submitted, failed, unknown or cancelled."""
    return status.total - status.pending


def is_finished(status: CampaignStatus) -> bool:
    return status.state in FINISHED_STATES


def follow(
    read: Callable[[], CampaignStatus],
    out: TextIO,
    *,
    interval_s: float = DEFAULT_INTERVAL_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    as_json: bool = False,
) -> CampaignStatus:
    """Read the status every `interval_s` and show it on `out` until the campaign is finished; the last
    status read. A terminal gets a view redrawn in place, anything else a line per reading (with
    `as_json`, the status as one JSON object a line, terminal or not)."""
    meter = PaceMeter()
    console = Console(file=out)
    if as_json or not console.is_terminal:
        while True:
            status = read()
            pace = meter.read(status, clock())
            print(msgspec.json.encode(status).decode() if as_json else plain_line(status, pace), file=out,
                  flush=True)  # fmt: skip
            if is_finished(status):
                return status
            sleep(interval_s)
    with Live(console=console, auto_refresh=False) as live:
        while True:
            status = read()
            live.update(view(status, meter.read(status, clock())), refresh=True)
            if is_finished(status):
                return status
            sleep(interval_s)


def view(status: CampaignStatus, pace: Pace) -> RenderableType:
    """The live view: a heading, the progress bar with rate and ETA, outcomes, failures, delivery.
    Names are user input: they go in as Text, never as rich markup."""
    heading = Text(f"campaign {status.campaign_id} ({status.type}", style="bold")
    if status.name:
        heading.append(f", {status.name}")
    heading.append("): ")
    heading.append(status.state, style=_STATE_STYLES.get(status.state, "bold"))
    settled, total = settled_of(status), status.total
    bar = Table.grid(padding=(0, 2))
    bar.add_row(
        ProgressBar(total=max(total, 1), completed=settled, width=40),
        Text(f"{settled:,}/{total:,} ({_percent(settled, total)})"),
        Text(_rate_text(pace)),
        Text(f"ETA {_eta_text(pace, status)}"),
    )
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="dim")
    facts.add_column()
    facts.add_row("outcomes", _outcomes_text(status))
    if status.failures:
        facts.add_row("failures", _failures_text(status))
    if status.held_reason:
        facts.add_row("held", Text(status.held_reason, style="yellow"))
    if status.publishing:
        facts.add_row("publishing", "the total grows as the file is read")
    facts.add_row("delivery", _delivery_text(status))
    return Group(heading, bar, facts)


def plain_line(status: CampaignStatus, pace: Pace) -> str:
    """One reading as one line: when, the state, progress, outcomes, pace, and what holds it up."""
    settled, total = settled_of(status), status.total
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    parts = [
        f"{now} {status.campaign_id} {status.state} {settled}/{total} ({_percent(settled, total)})",
        _outcomes_text(status),
        f"{_rate_text(pace)}, ETA {_eta_text(pace, status)}",
    ]
    if status.failures:
        parts.append("failures " + _failures_text(status))
    if status.held_reason:
        parts.append(f"held: {status.held_reason}")
    parts.append("delivery " + _delivery_text(status))
    return "; ".join(parts)


_STATE_STYLES = {
    "running": "bold green",
    "completed": "bold green",
    "paused": "bold yellow",
    "held": "bold yellow",
    "failed": "bold red",
    "cancelled": "bold red",
}


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def _rate_text(pace: Pace) -> str:
    return "- msg/s" if pace.rate is None else f"{pace.rate:,.1f} msg/s"


def _eta_text(pace: Pace, status: CampaignStatus) -> str:
    if is_finished(status) or not status.pending:
        return "done"
    return "-" if pace.eta_s is None else duration(pace.eta_s)


def _outcomes_text(status: CampaignStatus) -> str:
    text = f"submitted {status.submitted}, failed {status.failed}, unknown {status.unknown}"
    return text + (f", cancelled {status.cancelled}" if status.cancelled else "")


def _failures_text(status: CampaignStatus) -> str:
    ranked = sorted(status.failures.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{code} x{count}" for code, count in ranked)


def _delivery_text(status: CampaignStatus) -> str:
    text = (
        f"delivered {status.delivered}, undelivered {status.undelivered}, pending {status.delivery_pending}"
    )
    return text + (f", failed after submission {status.dlr_failed}" if status.dlr_failed else "")


def duration(seconds: float) -> str:
    """`42s`, `3m05s`, `2h10m`: how long, to a reader."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
