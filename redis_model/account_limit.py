"""The account's limits as `campaign limit` reads and sets them: messages per second for every worker, and
the most messages a UTC day, with what today has used of it."""

from __future__ import annotations

from typing import NamedTuple

import redis

from redis_model import keys

_LIMIT = "limit"
_DAILY = "daily"
# When the next urgent request may go: booked at the old pace, it may lie far ahead of a new one.
_URGENT_TAT = "urgent_tat"
_DAY_S = 86_400


class DailyUse(NamedTuple):
    """The account's daily cap and what today (UTC) used of it: messages booked on its line."""

    cap: int
    used: int
    resets_at: float  # the next UTC midnight (Unix seconds)


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
    """No limit any more: the account's whole pacing state goes with it, but for its daily cap."""
    cap = read_daily_cap(client, sid)
    with client.pipeline(transaction=True) as tx:
        tx.delete(keys.account_rate(sid))
        if cap is not None:
            tx.hset(keys.account_rate(sid), _DAILY, cap)
        tx.execute()


def read_daily_cap(client: redis.Redis, sid: str) -> int | None:
    raw: bytes | None = client.hget(keys.account_rate(sid), _DAILY)  # type: ignore[assignment]
    return int(raw) if raw else None


def write_daily_cap(client: redis.Redis, sid: str, cap: int | None) -> None:
    """Set the daily cap (None: none); workers follow at their next request. Today's use is kept."""
    if cap is None:
        client.hdel(keys.account_rate(sid), _DAILY)
    else:
        client.hset(keys.account_rate(sid), _DAILY, cap)


def daily_use(client: redis.Redis, sid: str) -> DailyUse | None:
    """The cap and today's use of it, on Redis's clock; None when the account has no cap."""
    with client.pipeline(transaction=False) as pipe:
        pipe.hget(keys.account_rate(sid), _DAILY)
        pipe.time()
        raw, (seconds, _micros) = pipe.execute()
    if not raw:
        return None
    today = int(seconds) // _DAY_S
    used = client.hget(keys.account_daily(sid), str(today))
    return DailyUse(int(raw), int(used or 0), float((today + 1) * _DAY_S))  # type: ignore[arg-type]
