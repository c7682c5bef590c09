"""Quiet hours: a daily sending window in the recipients' local time, across time zones and DST."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from producer.timezones import zones_of
from schemas.window import parse_window, seconds_until_open

NINE_TO_NINE = (9 * 60, 21 * 60)


def at(text: str, zone: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


@pytest.mark.parametrize(
    ("text", "window"),
    [("09:00-21:00", (540, 1260)), ("22:30-06:00", (1350, 360)), (" 00:00-23:59 ", (0, 1439))],
)
def test_windows_parse_to_minutes(text, window):
    assert parse_window(text) == window


@pytest.mark.parametrize("text", ["9-21", "09:00-09:00", "24:00-06:00", "09:60-10:00", "09:00–21:00", ""])
def test_bad_windows_are_none(text):
    assert parse_window(text) is None


@pytest.mark.parametrize(
    ("local", "zone", "hours"),
    [
        ("2026-12-02T10:00", "Asia/Kolkata", 0),  # inside
        ("2026-12-02T08:00", "Asia/Kolkata", 1),  # before it opens
        ("2026-12-02T21:00", "Asia/Kolkata", 12),  # it has just closed: tomorrow 09:00
        ("2026-12-02T23:30", "America/New_York", 9.5),
        ("2026-03-08T01:00", "America/New_York", 7),  # the night the clocks go forward: 7 h, not 8
        ("2026-12-02T20:59", "Australia/Sydney", 0),
    ],
)
def test_time_until_the_window_opens_in_a_zone(local, zone, hours):
    assert seconds_until_open(NINE_TO_NINE, (zone,), at(local, zone)) == pytest.approx(hours * 3600)


def test_a_window_across_midnight():
    night = (22 * 60, 6 * 60)
    assert seconds_until_open(night, ("Asia/Kolkata",), at("2026-12-02T23:00", "Asia/Kolkata")) == 0
    assert seconds_until_open(night, ("Asia/Kolkata",), at("2026-12-03T05:59", "Asia/Kolkata")) == 0
    assert seconds_until_open(night, ("Asia/Kolkata",), at("2026-12-03T06:00", "Asia/Kolkata")) == 16 * 3600


def test_with_several_zones_the_window_must_be_open_in_all_of_them():
    # 14:00 in London is 09:00 in New York: open in both from then, until 21:00 in London.
    zones = ("Europe/London", "America/New_York")
    assert seconds_until_open(NINE_TO_NINE, zones, at("2026-12-02T12:00", "Europe/London")) == 2 * 3600
    assert seconds_until_open(NINE_TO_NINE, zones, at("2026-12-02T15:00", "Europe/London")) == 0
    assert seconds_until_open(NINE_TO_NINE, zones, at("2026-12-02T21:30", "Europe/London")) == 16.5 * 3600


def test_zones_too_far_apart_for_a_common_hour_fall_back_to_the_middle_one():
    zones = ("Europe/Kaliningrad", "Asia/Yekaterinburg", "Pacific/Kiritimati")  # UTC+2, +5, +14
    now = at("2026-12-02T09:30", "Asia/Yekaterinburg")
    assert seconds_until_open(NINE_TO_NINE, zones, now) == 0
    assert seconds_until_open(NINE_TO_NINE, zones, now - 3600) == pytest.approx(1800)


@pytest.mark.parametrize(
    ("number", "zone"),
    [
        ("+919876543210", "Asia/Calcutta"),
        ("+12125550100", "America/New_York"),
        ("+14155550100", "America/Los_Angeles"),
    ],
)
def test_a_number_is_placed_by_its_prefix(number, zone):
    assert zones_of(number) == (zone,)
