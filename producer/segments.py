"""How many SMS segments a message costs: GSM-7 or UCS-2, single (160/70) or concatenated (153/67).

A concatenated message spends part of each segment on its header. An escape pair (a GSM-7
extension character) and a UTF-16 surrogate pair (an emoji, say) are never split across
segments, so a segment may end a unit short.
"""

from __future__ import annotations

import enum

from schemas.gsm7 import GSM7_EXTENSION, needs_ucs2
from schemas.kaleyra import UnicodeFlag


class Encoding(enum.StrEnum):
    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


# Units per segment: (alone, in a concatenated message). GSM-7 counts septets, UCS-2 UTF-16 code units.
_CAPACITY = {Encoding.GSM7: (160, 153), Encoding.UCS2: (70, 67)}


def encoding_of(text: str, unicode: UnicodeFlag = "auto") -> Encoding:
    """`unicode` 1 asks for UCS-2; auto (and 0, which the producer refuses outside GSM-7) picks
    GSM-7 whenever the text fits it."""
    if unicode == "1" or needs_ucs2(text):
        return Encoding.UCS2
    return Encoding.GSM7


def segments(text: str, encoding: Encoding) -> int:
    """Segments `text` takes in `encoding` (which must be able to carry it)."""
    units = [_units(ch, encoding) for ch in text]
    single, multi = _CAPACITY[encoding]
    if sum(units) <= single:
        return 1
    count, used = 1, 0
    for width in units:
        if used + width > multi:
            count, used = count + 1, 0
        used += width
    return count


def _units(ch: str, encoding: Encoding) -> int:
    if encoding is Encoding.GSM7:
        return 2 if ch in GSM7_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1
