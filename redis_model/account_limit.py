"""The account's rate limit as `campaign limit` reads and sets it: messages per second for every worker."""

from __future__ import annotations

import redis

from redis_model import keys

_LIMIT = "limit"
# When the next urgent request may go: booked at the old pace, it may lie far ahead of a new one.
_URGENT_TAT = "urgent_tat"


def read_limit(client: redis.Redis, sid: str) -> float | None:
    """Messages per second; None when the account has no limit."""
    raw: bytes | None = client.hget(keys.account_rate(sid), _LIMIT)  # type: ignore[assignment]
    return float(raw) if raw else None


def write_limit(client: redis.Redis, sid: str, limit: float) -> None:
    """Set the limit; running workers follow at their next request. Bulk books only a moment ahead, so
    only the urgent time line is dropped."""
    with client.pipeline(transaction=True) as tx:
        tx.hset(keys.account_rate(sid), _LIMIT, repr(limit))
        tx.hdel(keys.account_rate(sid), _URGENT_TAT)
        tx.execute()


def remove_limit(client: redis.Redis, sid: str) -> None:
    """No limit any more: the account's whole pacing state goes with it."""
    client.delete(keys.account_rate(sid))
