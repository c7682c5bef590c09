"""Which time zones a recipient may be in, from the prefix of its number (phonenumbers' data).

`+1212...` is New York's; `+91...` is India's one zone; a prefix phonenumbers cannot place
more finely (a mobile range of a large country) spans all of that country's zones.
"""

from __future__ import annotations

from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

from schemas.window import UNPLACED


def zones_of(number: str) -> tuple[str, ...]:
    """The zones of E.164 `number` ("+12125550100" -> ("America/New_York",))."""
    digits = number[1:]
    for size in range(min(TIMEZONE_LONGEST_PREFIX, len(digits)), 0, -1):
        zones = TIMEZONE_DATA.get(digits[:size])
        if zones:
            return tuple(zones)
    return UNPLACED
