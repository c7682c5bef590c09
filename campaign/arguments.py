"""argparse value types: a count of at least 1, a share from 0 to 1, a price."""

from __future__ import annotations

import argparse
from decimal import Decimal, InvalidOperation

# argparse names a type by its function's __name__ when it refuses a value ("invalid _positive value:
# 'x'"): the functions keep the names the CLI has always shown, and are exported under plain ones.


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{raw!r} must be at least 1")
    return value


def _price(raw: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a price like 0.25") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"{raw!r} must be a price of 0 or more")
    return value


def _rate(raw: str) -> float:
    value = float(raw)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{raw!r} must be between 0 and 1")
    return value


positive, price, rate = _positive, _price, _rate
