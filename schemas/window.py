"""A daily sending window in the recipients' local time (quiet hours outside it), across time zones.

A job's recipients share a set of time zones (those their number's prefix spans); the window
is open when it is open in every one of them. When no hour is (a country spanning more hours
than the window is long), the zone in the middle of the set by UTC offset stands for all.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

# A number no prefix places (none should be, in E.164): its window is kept in UTC.
UNPLACED = ("UTC",)
DEFAULT_WINDOW = "09:00-21:00"  # India's rule for promotional SMS (TRAI), a fair default elsewhere
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
_DAY_S = 86_400

Window = tuple[int, int]  # minutes after local midnight: (opens, closes); closes < opens wraps midnight


def parse_window(text: str) -> Window | None:
    """`"09:00-21:00"` as minutes, or None when it is not a window of that shape."""
    match = _WINDOW.match(text.strip())
    if not match:
        return None
    opens, closes = int(match[1]) * 60 + int(match[2]), int(match[3]) * 60 + int(match[4])
    return None if opens == closes else (opens, closes)


def seconds_until_open(window: Window, zones: Sequence[str], now: float) -> float:
    """0 when the window is open now in every zone, else the seconds until it is."""
    intervals = _open_intervals(window, tuple(zones), now)
    if not intervals:
        intervals = _open_intervals(window, (_middle_zone(zones, now),), now)
    for start, end in intervals:
        if end > now:
            return max(0.0, start - now)
    return float(_DAY_S)  # unreachable with two days of intervals; look again tomorrow


def _open_intervals(window: Window, zones: tuple[str, ...], now: float) -> list[tuple[float, float]]:
    """The window's open spans (Unix times) from yesterday to two days ahead, open in every zone."""
    spans: list[tuple[float, float]] | None = None
    for zone in zones:
        mine = _zone_intervals(window, zone, int(now // 3600))
        spans = mine if spans is None else _intersect(spans, mine)
    return spans or []


@functools.lru_cache(maxsize=4096)
def _zone_intervals(window: Window, zone: str, hour: int) -> list[tuple[float, float]]:
    """Cached per hour: a job checks its window before every chunk."""
    tz = _zone(zone)
    today = datetime.fromtimestamp(hour * 3600, tz).date()
    opens, closes = window
    spans = []
    for days in (-1, 0, 1, 2):
        day = datetime(today.year, today.month, today.day, tzinfo=tz) + timedelta(days=days)
        start = day.replace(hour=opens // 60, minute=opens % 60)
        end_day = day + timedelta(days=1) if closes < opens else day
        end = end_day.replace(hour=closes // 60, minute=closes % 60)
        spans.append((start.timestamp(), end.timestamp()))
    return spans


def _intersect(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> list[tuple[float, float]]:
    spans = []
    for a_start, a_end in a:
        for b_start, b_end in b:
            start, end = max(a_start, b_start), min(a_end, b_end)
            if start < end:
                spans.append((start, end))
    return sorted(spans)


def _middle_zone(zones: Sequence[str], now: float) -> str:
    moment = datetime.fromtimestamp(now, _zone("UTC"))
    by_offset = sorted(zones, key=lambda z: moment.astimezone(_zone(z)).utcoffset() or timedelta(0))
    return by_offset[len(by_offset) // 2]


@functools.cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)
