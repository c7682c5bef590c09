"""What became of a campaign's settled chunks: the ledger's outcome records, read one or a page at a time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import redis

from redis_model import keys, records
from schemas.campaign import ChunkOutcome


class OutcomeRecord(NamedTuple):
    where: tuple[int, int]  # (job, offset) of the chunk
    outcome: ChunkOutcome
    stored: bytes  # the record as read: a change made on what was read checks it is still this one


def outcome_records(client: redis.Redis, campaign_id: str, *, page: int = 100) -> Iterator[OutcomeRecord]:
    """Every settled chunk's outcome, in no particular order; memory is one page."""
    for field, raw in client.hscan_iter(keys.outcomes(campaign_id), count=page):
        job, offset = field.split(b":")
        yield OutcomeRecord((int(job), int(offset)), records.decode_outcome(raw), raw)


def chunk_outcome(client: redis.Redis, campaign_id: str, job: int, offset: int) -> ChunkOutcome | None:
    """The outcome of job `job`'s chunk starting at `offset`; None while it is not settled."""
    raw: bytes | None = client.hget(keys.outcomes(campaign_id), keys.outcome_field(job, offset))  # type: ignore[assignment]
    return records.decode_outcome(raw) if raw is not None else None


def chunk_outcomes(
    client: redis.Redis, campaign_id: str, *, page: int = 100
) -> Iterator[tuple[tuple[int, int], ChunkOutcome]]:
    """`((job, offset), outcome)` for every settled chunk, in no particular order; memory is one page."""
    for where, outcome, _ in outcome_records(client, campaign_id, page=page):
        yield where, outcome
