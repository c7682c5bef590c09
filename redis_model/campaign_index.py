"""The index of every campaign by creation, read newest first (no key scan)."""

from __future__ import annotations

import redis

from redis_model import keys


def newest_campaign_ids(client: redis.Redis, limit: int) -> list[str]:
    """The ids of the `limit` newest campaigns, newest first."""
    ids: list[bytes] = client.zrevrange(keys.CAMPAIGNS_BY_CREATION, 0, limit - 1)  # type: ignore[assignment]
    return [campaign_id.decode() for campaign_id in ids]
