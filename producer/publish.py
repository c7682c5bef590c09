"""Publish a campaign: stage its jobs in Redis while streaming the rows, then commit and enqueue.

Nothing is visible to workers until every row has been read and accepted, so a
refusal half-way through a file leaves nothing behind. Duplicates are found with a
Redis set, keeping the producer's memory bounded by one page of rows.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import dramatiq
import msgspec
import redis

from producer.numbers import InvalidNumber, NumberNormaliser
from schemas import keys
from schemas.campaign import CampaignSpec, CampaignState, InvalidRow, Job, MessageType, Recipient
from schemas.errors import SpecError
from schemas.settings import Settings

SHOWN_INVALID_ROWS = 20

# Returns, for each number, 1 when it is new to the campaign and 0 for a duplicate.
_FIRST_SEEN_LUA = """
local flags = {}
for i = 1, #ARGV do flags[i] = redis.call('SADD', KEYS[1], ARGV[i]) end
return flags
"""

_encode = msgspec.msgpack.Encoder().encode


class PublishResult(msgspec.Struct, frozen=True, kw_only=True):
    campaign_id: str
    total: int
    invalid: int
    duplicates: int
    jobs: int
    state: str
    invalid_rows: list[InvalidRow] = []  # the first few, for the user to fix


def publish_campaign(
    spec: CampaignSpec,
    rows: Iterable[tuple[int, str]],
    *,
    client: redis.Redis,
    broker: dramatiq.Broker,
    settings: Settings,
) -> PublishResult:
    """Read every row, stage the jobs, commit the campaign and enqueue one message per job."""
    staging = _Staging(spec, client, settings)
    try:
        for line, raw in rows:
            staging.add(line, raw)
        result = staging.commit()
    except BaseException:
        staging.discard()
        raise
    enqueue_jobs(broker, spec.campaign_id, spec.type, range(result.jobs))
    return result


def enqueue_jobs(
    broker: dramatiq.Broker, campaign_id: str, message_type: str, indices: Iterable[int]
) -> None:
    """One message per job, on the lane of the campaign's type, by actor name (never importing the worker)."""
    lane = keys.lane_of(message_type)
    for index in indices:
        broker.enqueue(
            dramatiq.Message(
                queue_name=lane.queue,
                actor_name=lane.actor,
                args=(campaign_id, index),
                kwargs={},
                options={},
            )
        )


class _Staging:
    def __init__(self, spec: CampaignSpec, client: redis.Redis, settings: Settings) -> None:
        self.spec = spec
        self.client = client
        self.page_size = settings.job_size
        self.normaliser = NumberNormaliser(spec.prefix)
        self.first_seen = client.register_script(_FIRST_SEEN_LUA)
        self.page: list[Recipient] = []
        self.unique: list[Recipient] = []
        self.invalid_rows: list[InvalidRow] = []
        self.invalid_page: list[bytes] = []
        self.total = self.invalid = self.duplicates = self.jobs = 0

    def add(self, line: int, raw: str) -> None:
        try:
            number = self.normaliser.normalise(raw)
        except InvalidNumber as e:
            self._skip(line, raw, e.reason)
            return
        self.page.append(Recipient(number, line))
        if len(self.page) >= self.page_size:
            self._flush_page()

    def commit(self) -> PublishResult:
        self._flush_page()
        self._write_jobs(final=True)
        if self.total == 0:
            raise SpecError(
                f"no valid recipients: {self.invalid} invalid and {self.duplicates} duplicate rows"
            )
        state = CampaignState.SCHEDULED if self.spec.at else CampaignState.QUEUED
        cid = self.spec.campaign_id
        with self.client.pipeline(transaction=True) as tx:
            tx.hset(
                keys.campaign(cid),
                mapping={
                    keys.SPEC: msgspec.json.encode(self.spec),
                    keys.STATE: state.value,
                    keys.TOTAL: self.total,
                    keys.JOBS: self.jobs,
                    keys.INVALID: self.invalid,
                    keys.DUPLICATES: self.duplicates,
                    keys.SUBMITTED: 0,
                    keys.FAILED: 0,
                    keys.UNKNOWN: 0,
                    keys.CANCELLED: 0,
                    keys.RETRIED: 0,
                    keys.CREATED_AT: time.time(),
                },
            )
            tx.delete(keys.seen(cid))
            tx.execute()
        return PublishResult(
            campaign_id=cid,
            total=self.total,
            invalid=self.invalid,
            duplicates=self.duplicates,
            jobs=self.jobs,
            state=state.value,
            invalid_rows=self.invalid_rows,
        )

    def discard(self) -> None:
        self.client.delete(*keys.all_keys(self.spec.campaign_id))

    def _skip(self, line: int, raw: str, reason: str) -> None:
        self.invalid += 1
        row = InvalidRow(line, raw, reason)
        if len(self.invalid_rows) < SHOWN_INVALID_ROWS:
            self.invalid_rows.append(row)
        self.invalid_page.append(_encode(row))
        if len(self.invalid_page) >= self.page_size:
            self._flush_page()

    def _flush_page(self) -> None:
        if self.invalid_page:
            self.client.rpush(keys.invalid(self.spec.campaign_id), *self.invalid_page)
            self.invalid_page = []
        if not self.page:
            return
        flags = self.first_seen(keys=[keys.seen(self.spec.campaign_id)], args=[r.to for r in self.page])
        fresh = [r for r, flag in zip(self.page, flags, strict=True) if flag]
        self.duplicates += len(self.page) - len(fresh)
        self.unique.extend(fresh)
        self.total += len(fresh)
        self.page = []
        if self.spec.type is MessageType.OTP and self.total > 1:
            raise SpecError("type OTP sends to exactly one recipient; the file has more than one")
        self._write_jobs(final=False)

    def _write_jobs(self, *, final: bool) -> None:
        while len(self.unique) >= self.page_size or (final and self.unique):
            batch, self.unique = self.unique[: self.page_size], self.unique[self.page_size :]
            job = Job(campaign_id=self.spec.campaign_id, index=self.jobs, recipients=batch)
            self.client.hset(keys.jobs(self.spec.campaign_id), str(self.jobs), _encode(job))
            self.jobs += 1
