"""Read what became of each settled chunk (the ledger's outcome records), a page at a time."""

from __future__ import annotations

from collections.abc import Iterator

import redis

from redis_model import keys, records
from schemas.campaign import ChunkOutcome


def chunk_outcomes(
    client: redis.Redis, campaign_id: str, *, page: int = 100
) -> Iterator[tuple[tuple[int, int], ChunkOutcome]]:
    """`((job, offset), outcome)` for every settled chunk, in no particular order; memory is one page."""
    for where, outcome, _ in chunk_records(client, campaign_id, page=page):
        yield where, outcome


def chunk_records(
    client: redis.Redis, campaign_id: str, *, page: int = 100
) -> Iterator[tuple[tuple[int, int], ChunkOutcome, bytes]]:
    """`chunk_outcomes`, each with its record as stored: a change made on what was read checks that the
    record is still that one."""
    for field, raw in client.hscan_iter(keys.outcomes(campaign_id), count=page):
        job, offset = field.split(b":")
        yield (int(job), int(offset)), records.decode_outcome(raw), raw
