"""argparse value types: a count of at least 1, a share from 0 to 1, a price, a number of seconds."""

from __future__ import annotations

import argparse
from decimal import Decimal, InvalidOperation

# Each refuses a value with an ArgumentTypeError of its own: for a bare ValueError argparse would
# show the function's name ("invalid positive value: 'x'") rather than what was wanted.


def positive(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{raw!r} must be at least 1")
    return value


def price(raw: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a price like 0.25") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"{raw!r} must be a price of 0 or more")
    return value


def rate(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{raw!r} must be between 0 and 1")
    return value


def seconds(raw: str) -> float:
    """A time in seconds, more than 0 and at most a day: `--interval 0.5`."""
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number of seconds") from None
    if not 0.0 < value <= 86400.0:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"{raw!r} must be more than 0 and at most 86400 seconds")
    return value
