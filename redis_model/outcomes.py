"""What became of a campaign's settled chunks: the ledger's outcome records, read one or a page at a time,
and the delivery reports of their messages, a page of requests at a time."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import NamedTuple

import redis

from redis_model import keys, records
from redis_model.delivery import (
    CAMPAIGN,
    HEADER_BYTES,
    RECORD_BYTES,
    Delivery,
    decode_header,
    decode_record,
    split_message_id,
)
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


class Deliveries:
    """The delivery records of a page of one campaign's requests: each node's most final report."""

    def __init__(self, strings: dict[str, bytes]) -> None:
        self._strings = strings  # request id -> its delivery string

    def of(self, message_id: str) -> Delivery | None:
        """The most final report of a message (by Kaleyra's id); None if none came."""
        where = split_message_id(message_id)
        raw = self._strings.get(where[0]) if where else None
        if where is None or raw is None:
            return None
        start = HEADER_BYTES + where[1] * RECORD_BYTES
        return decode_record(raw[start : start + RECORD_BYTES])


def campaign_deliveries(client: redis.Redis, campaign_id: str, request_ids: Collection[str]) -> Deliveries:
    """The delivery records of these requests of the campaign: one GET a request, in one pipeline.
    A string whose header names no chunk of this campaign (expired, or not ours) counts as no reports."""
    wanted = list(request_ids)
    pipe = client.pipeline(transaction=False)
    for request_id in wanted:
        pipe.get(keys.delivery(request_id))
    ours = {}
    for request_id, raw in zip(wanted, pipe.execute(), strict=True):
        header = decode_header(raw) if raw else None
        if header is not None and header.kind == CAMPAIGN and header.campaign_id == campaign_id:
            ours[request_id] = raw
    return Deliveries(ours)
