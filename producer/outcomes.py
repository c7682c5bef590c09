"""Read what became of each settled chunk (the ledger's outcome records), a page at a time."""

from __future__ import annotations

from collections.abc import Iterator

import redis

from redis_model.outcomes import outcome_records
from schemas.campaign import ChunkOutcome


def chunk_outcomes(
    client: redis.Redis, campaign_id: str, *, page: int = 100
) -> Iterator[tuple[tuple[int, int], ChunkOutcome]]:
    """`((job, offset), outcome)` for every settled chunk, in no particular order; memory is one page."""
    for where, outcome, _ in outcome_records(client, campaign_id, page=page):
        yield where, outcome
