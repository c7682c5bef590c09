"""The index of every campaign by creation, read newest first (no key scan), and kept to what exists."""

from __future__ import annotations

import redis

from redis_model import keys

_PAGE = 200  # ids read from the index per round trip when filtering by state


def newest_campaign_ids(client: redis.Redis, limit: int, *, state: str | None = None) -> list[str]:
    """The ids of the `limit` newest campaigns (in `state`, when given), newest first. A filter reads
    the index a page at a time, with each campaign's state, until `limit` match or the index ends."""
    if state is None:
        return _decoded(client.zrevrange(keys.CAMPAIGNS_BY_CREATION, 0, limit - 1))  # type: ignore[arg-type]
    found: list[str] = []
    start = 0
    while len(found) < limit:
        page = _decoded(client.zrevrange(keys.CAMPAIGNS_BY_CREATION, start, start + _PAGE - 1))  # type: ignore[arg-type]
        if not page:
            break
        with client.pipeline(transaction=False) as pipe:
            for campaign_id in page:
                pipe.hget(keys.campaign(campaign_id), keys.STATE)
            states = pipe.execute()
        found += [
            cid for cid, got in zip(page, states, strict=True) if got is not None and got.decode() == state
        ]
        start += _PAGE
    return found[:limit]


def oldest_campaign_ids(client: redis.Redis, start: int, count: int) -> list[str]:
    """`count` ids of the index from rank `start`, oldest first: a page of a walk over every campaign."""
    return _decoded(client.zrange(keys.CAMPAIGNS_BY_CREATION, start, start + count - 1))  # type: ignore[arg-type]


def forget_expired(client: redis.Redis, created_before: float) -> int:
    """Remove the ids created before `created_before` whose campaign expired (or was removed); those
    still there (a campaign long paused, or finished since) stay listed. Returns how many went."""
    old = _decoded(client.zrangebyscore(keys.CAMPAIGNS_BY_CREATION, "-inf", f"({created_before}"))  # type: ignore[arg-type]
    if not old:
        return 0
    with client.pipeline(transaction=False) as pipe:
        for campaign_id in old:
            pipe.exists(keys.campaign(campaign_id))
        exists = pipe.execute()
    gone = [campaign_id for campaign_id, there in zip(old, exists, strict=True) if not there]
    return int(client.zrem(keys.CAMPAIGNS_BY_CREATION, *gone)) if gone else 0


def _decoded(ids: list[bytes]) -> list[str]:
    return [campaign_id.decode() for campaign_id in ids]
