"""A campaign's published jobs, read back: how many there are, and each by its index."""

from __future__ import annotations

import redis

from redis_model import keys, records
from schemas.campaign import Job


def job_count(client: redis.Redis, campaign_id: str) -> int:
    """Jobs published so far (0 for no such campaign): their indexes are 0 to this, less one."""
    return int(client.hget(keys.campaign(campaign_id), keys.JOBS) or 0)  # type: ignore[arg-type]


def read_job(client: redis.Redis, campaign_id: str, index: int) -> Job | None:
    """Job `index`; None when it is not there."""
    raw: bytes | None = client.hget(keys.jobs(campaign_id), str(index))  # type: ignore[assignment]
    return records.decode_job(raw) if raw is not None else None
