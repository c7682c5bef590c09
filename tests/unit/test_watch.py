"""The live view's parts: the pace between readings, the view a terminal redraws, and following a
campaign until it is finished."""

from __future__ import annotations

import io

import msgspec
from rich.console import Console

from campaign.watch import PaceMeter, follow, plain_line, view
from producer.control import CampaignStatus

BASE = CampaignStatus(
    campaign_id="c1", name="[bold]Spring[/bold] <sale>", type="MKT", state="running", total=1000,
    submitted=380, failed=15, unknown=5, cancelled=0, pending=600, invalid=0, duplicates=0, suppressed=0,
    segments=1000, retried=0, resent=0, republished=0, jobs=1, failures={"E401": 5, "E413": 10},
    created_at=None, started_at=None, finished_at=None, expires_at=None, waiting_for_window=0,
    window_opens_at=None, scheduled_for=None, release_at=None, delivered=300, undelivered=20,
    delivery_pending=60,
)  # fmt: skip


def at(**changes) -> CampaignStatus:
    return msgspec.structs.replace(BASE, **changes)


def test_the_pace_is_the_recipients_settled_since_the_last_reading_a_second():
    meter = PaceMeter()

    first = meter.read(at(pending=600), now=10.0)
    second = meter.read(at(pending=400), now=12.0)

    assert (first.rate, first.eta_s) == (None, None)
    assert (second.rate, second.eta_s) == (100.0, 4.0)


def test_nothing_settled_is_a_rate_of_zero_and_no_eta():
    meter = PaceMeter()
    meter.read(at(), now=1.0)

    pace = meter.read(at(), now=2.0)

    assert (pace.rate, pace.eta_s) == (0.0, None)


def test_the_view_shows_progress_outcomes_failures_held_reason_and_delivery_with_names_as_text():
    meter = PaceMeter()
    meter.read(at(pending=700), now=0.0)
    console = Console(record=True, width=120, file=io.StringIO())

    console.print(
        view(at(state="held", held_reason="the gateway refused the API key"), meter.read(at(), 1.0))
    )

    text = console.export_text()
    assert "campaign c1 (MKT, [bold]Spring[/bold] <sale>): held" in text
    assert "400/1,000 (40%)" in text and "100.0 msg/s" in text and "ETA 6s" in text
    assert "submitted 380, failed 15, unknown 5" in text
    assert "E413 x10, E401 x5" in text
    assert "held      the gateway refused the API key" in text
    assert "delivered 300, undelivered 20, pending 60" in text


def test_a_plain_line_holds_the_same_facts():
    line = plain_line(at(state="completed", pending=0, submitted=980), PaceMeter().read(at(), 0.0))

    assert " c1 completed 1000/1000 (100%); submitted 980, failed 15, unknown 5; - msg/s, ETA done" in line
    assert "failures E413 x10, E401 x5" in line and "\n" not in line


def test_follow_reads_until_the_campaign_is_finished_and_returns_the_last_status():
    readings = iter([at(), at(pending=300), at(state="completed", pending=0, submitted=980)])
    out, slept = io.StringIO(), []

    last = follow(lambda: next(readings), out, interval_s=0.5, clock=iter([0.0, 1.0, 2.0]).__next__,
                  sleep=slept.append)  # fmt: skip

    assert last.state == "completed"
    assert slept == [0.5, 0.5]
    lines = out.getvalue().splitlines()
    assert [" running 400/1000 " in lines[0], " running 700/1000 " in lines[1]] == [True, True]
    assert "300.0 msg/s, ETA 1s" in lines[1]


def test_follow_on_a_terminal_redraws_one_view_in_place():
    readings = iter([at(), at(state="cancelled", pending=0, cancelled=600)])
    terminal = io.StringIO()
    terminal.isatty = lambda: True  # type: ignore[method-assign]

    follow(
        lambda: next(readings),
        terminal,
        interval_s=0.0,
        clock=iter([0.0, 1.0]).__next__,
        sleep=lambda s: None,
    )

    drawn = terminal.getvalue()
    assert "\x1b[" in drawn  # cursor movement: the view is redrawn, not appended
    assert "cancelled" in drawn and "1,000/1,000 (100%)" in drawn
