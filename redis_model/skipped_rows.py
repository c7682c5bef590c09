"""The rows a campaign left out at publish (invalid, suppressed, duplicate), read back a page at a time."""

from __future__ import annotations

from collections.abc import Iterator

import redis

from redis_model import keys, records
from schemas.campaign import InvalidRow, Recipient

PAGE = 1000


def invalid_rows(client: redis.Redis, campaign_id: str, *, page: int = PAGE) -> Iterator[InvalidRow]:
    """Each row skipped as an invalid number, in the order they were read."""
    return map(records.decode_invalid_row, _entries(client, keys.invalid(campaign_id), page))


def suppressed_recipients(client: redis.Redis, campaign_id: str, *, page: int = PAGE) -> Iterator[Recipient]:
    """Each recipient left out because the account's suppression list holds its number (no field values)."""
    return map(records.decode_left_out, _entries(client, keys.suppressed(campaign_id), page))


def duplicate_recipients(client: redis.Redis, campaign_id: str, *, page: int = PAGE) -> Iterator[Recipient]:
    """Each row left out because an earlier row has its number (no field values)."""
    return map(records.decode_left_out, _entries(client, keys.duplicates(campaign_id), page))


def _entries(client: redis.Redis, key: str, page: int) -> Iterator[bytes]:
    start = 0
    while batch := client.lrange(key, start, start + page - 1):
        yield from batch  # type: ignore[misc]
        start += page
