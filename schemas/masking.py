"""Recipients as logs and reports show them by default: enough to tell numbers apart, not to dial."""

from __future__ import annotations


def mask_number(number: str) -> str:
    """`+919876543210` -> `+91******3210`."""
    keep_head = 3 if number.startswith("+") else 2
    hidden = len(number) - keep_head - 4
    if hidden <= 0:
        return "*" * len(number)
    return f"{number[:keep_head]}{'*' * hidden}{number[-4:]}"
