"""Recipients as logs and reports show them by default: enough to tell numbers apart, not to dial."""

from __future__ import annotations

_STARS = tuple("*" * n for n in range(32))


def mask_number(number: str) -> str:
    """`+919876543210` -> `+91******3210`. Once per logged message: kept to slices and a lookup."""
    keep_head = 3 if number[:1] == "+" else 2
    hidden = len(number) - keep_head - 4
    if hidden <= 0:
        return "*" * len(number)
    stars = _STARS[hidden] if hidden < len(_STARS) else "*" * hidden
    return number[:keep_head] + stars + number[-4:]
