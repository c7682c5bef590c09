"""The GSM 03.38 alphabet: a body outside it needs UCS-2 (unicode "1" or "auto")."""

from __future__ import annotations

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Reached through the escape character; each costs two septets.
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
GSM7 = GSM7_BASIC | GSM7_EXTENSION


def needs_ucs2(text: str) -> bool:
    """True when `text` has a character GSM-7 cannot carry."""
    return not GSM7.issuperset(text)
