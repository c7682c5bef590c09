"""Recipients as logs and reports show them by default: enough to tell numbers apart, not to dial."""

from __future__ import annotations

from collections.abc import Sequence

_STARS = tuple("*" * n for n in range(32))


def mask_number(number: str) -> str:
    """`+919876543210` -> `+91******3210`. Once per logged message: kept to slices and a lookup."""
    keep_head = 3 if number[:1] == "+" else 2
    hidden = len(number) - keep_head - 4
    if hidden <= 0:
        return "*" * len(number)
    stars = _STARS[hidden] if hidden < len(_STARS) else "*" * hidden
    return number[:keep_head] + stars + number[-4:]


def mask_numbers(numbers: Sequence[str]) -> list[str]:
    """`mask_number` of each. A chunk's numbers usually share one shape (Kaleyra echoes them without
    the "+", all of one length): then each is two slices, without a call per number."""
    lengths = set(map(len, numbers))
    if len(lengths) == 1 and (hidden := lengths.pop() - 6) > 0 and "+" not in "".join(numbers):
        stars = "*" * hidden
        return [f"{number[:2]}{stars}{number[-4:]}" for number in numbers]
    return [mask_number(number) for number in numbers]
