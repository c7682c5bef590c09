"""What publishing a campaign reads and writes in Redis: its hash, jobs, left-out rows and seen numbers.

The producer calls these typed methods; every key, field and script of publishing is spelt here.
Two writes are transactions: the campaign is announced (its hash written and listed) together with
its first job published, or together with what publishing counted, so that it is never visible
without either. Announcing one also forgets the index's campaigns that expired.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import redis
from redis.typing import EncodableT, FieldT

from redis_model import campaign_index, keys, records
from redis_model.scripts import joined_numbers, source
from schemas.campaign import CampaignSpec, CampaignState, InvalidRow, Job, Recipient

_SEEN_PER_COMMAND = 10_000  # numbers per SADD when the seen set moves to Redis
_CANCELLED = CampaignState.CANCELLED.value.encode()


class Announcement(NamedTuple):
    """What a campaign's hash starts with, besides counters at zero."""

    spec: CampaignSpec
    state: CampaignState  # queued, or scheduled
    release_at: float | None  # a scheduled campaign: when its chunks start going to Kaleyra


class Counted(NamedTuple):
    """What publishing counted, written to the campaign's hash as it finishes."""

    invalid: int
    duplicates: int
    suppressed: int
    segments: int
    total: int | None = None  # None: counted in Redis with each job published
    jobs: int | None = None


class PublishingStore:
    """One campaign's keys as its producer publishes it."""

    def __init__(self, client: redis.Redis, campaign_id: str, *, retention_s: float) -> None:
        self.client = client
        self.campaign_id = campaign_id
        self.retention_s = int(retention_s)  # a campaign that finishes as publishing ends expires after it
        self._campaign = keys.campaign(campaign_id)
        self._jobs = keys.jobs(campaign_id)
        self._seen = keys.seen(campaign_id)
        self._finish = client.register_script(source("finish_publishing"))
        self._renew = client.register_script(source("renew_lease"))
        self._publish_job = client.register_script(source("publish_job"))
        self._first_seen = client.register_script(source("first_seen"))
        self._listed = client.register_script(source("listed"))

    def publish_job(self, job: Job, lease_s: float, *, announcing: Announcement | None = None) -> bool:
        """Write the job, count its recipients in the campaign and renew the publishing lease; first
        announce the campaign, in the same transaction, if asked. True: its owner cancelled it."""
        job_args: list[EncodableT] = [lease_s, job.index, records.encode_job(job), len(job.recipients)]
        job_keys = [self._campaign, self._jobs]
        if announcing is None:
            state = self._publish_job(keys=job_keys, args=job_args)
        else:
            with self.client.pipeline(transaction=True) as tx:
                self._announce(tx, announcing)
                self._publish_job(keys=job_keys, args=job_args, client=tx)
                *_, state = tx.execute()
            self._forget_expired()
        return bool(state == _CANCELLED)

    def stage_job(self, job: Job) -> None:
        """Write the job where workers will find it, without counting it: nothing is announced yet."""
        self.client.hset(self._jobs, str(job.index), records.encode_job(job))

    def renew_lease(self, lease_s: float) -> bool:
        """Renew the publishing lease while reading rows that publish no job. True: cancelled."""
        return bool(self._renew(keys=[self._campaign], args=[lease_s]) == _CANCELLED)

    def finish(self, counted: Counted, *, announcing: Announcement | None = None) -> str:
        """Write what publishing counted, drop its lease and the seen set, in one transaction (after
        announcing the campaign, if asked); the campaign's state."""
        with self.client.pipeline(transaction=True) as tx:
            if announcing is not None:
                self._announce(tx, announcing)
            self._finish_on(tx, counted)
            *_, state = tx.execute()
        if announcing is not None:
            self._forget_expired()
        return str(state.decode())

    def finish_abandoned(self, counted: Counted) -> None:
        """`finish` for a campaign whose reading stopped half-way, after it was cancelled."""
        self._finish_on(self.client, counted)

    def discard(self) -> None:
        """Remove every key of the campaign."""
        self.client.unlink(*keys.all_keys(self.campaign_id))

    def push_invalid(self, rows: Sequence[InvalidRow]) -> None:
        self.client.rpush(keys.invalid(self.campaign_id), *map(records.encode_invalid_row, rows))

    def push_duplicates(self, recipients: Sequence[Recipient]) -> None:
        self.client.rpush(keys.duplicates(self.campaign_id), *map(records.encode_left_out, recipients))

    def push_suppressed(self, recipients: Sequence[Recipient]) -> None:
        self.client.rpush(keys.suppressed(self.campaign_id), *map(records.encode_left_out, recipients))

    def first_seen(self, page: Sequence[Recipient]) -> list[int]:
        """The 1-based positions, ascending, of the page's numbers in the seen set or earlier in the
        page; the others are added to it."""
        return list(self._first_seen(keys=[self._seen], args=[joined_numbers(page)]))

    def add_seen(self, numbers: Iterable[str]) -> None:
        """Add E.164 numbers to the seen set, many per command."""
        batch: list[str] = []
        for number in numbers:
            batch.append(number)
            if len(batch) == _SEEN_PER_COMMAND:
                self.client.sadd(self._seen, *batch)
                batch = []
        if batch:
            self.client.sadd(self._seen, *batch)

    def listed(self, sid: str, page: Sequence[Recipient]) -> list[int]:
        """The 1-based positions, ascending, of the page's numbers on the account's suppression list."""
        return list(self._listed(keys=[keys.suppression_list(sid)], args=[joined_numbers(page)]))

    def _announce(self, tx: redis.client.Pipeline, announcing: Announcement) -> None:
        """Write the campaign's hash and list it, in the caller's transaction."""
        header = _header(announcing)
        tx.hset(self._campaign, mapping=header)
        tx.zadd(keys.CAMPAIGNS_BY_CREATION, {self.campaign_id: header[keys.CREATED_AT]})
        if announcing.spec.callback_url is not None:  # its end is told: watched until then
            tx.zadd(keys.CALLBACK_CAMPAIGNS, {self.campaign_id: header[keys.CREATED_AT]})

    def _finish_on(self, client: redis.Redis, counted: Counted) -> None:
        pairs: list[EncodableT] = [
            keys.INVALID, counted.invalid, keys.DUPLICATES, counted.duplicates,
            keys.SUPPRESSED, counted.suppressed, keys.SEGMENTS, counted.segments,
        ]  # fmt: skip
        if counted.total is not None and counted.jobs is not None:
            pairs += [keys.TOTAL, counted.total, keys.JOBS, counted.jobs]
        self._finish(
            keys=[self._seen, *keys.retained_keys(self.campaign_id)],
            args=[time.time(), self.retention_s, *pairs],
            client=client,
        )

    def _forget_expired(self) -> None:
        """Keep the index to what exists: a campaign created a retention ago may have expired."""
        campaign_index.forget_expired(self.client, created_before=time.time() - self.retention_s)


def _header(announcing: Announcement) -> dict[FieldT, EncodableT]:
    """The spec, the state and counters at zero."""
    return {
        keys.SPEC: records.encode_spec(announcing.spec),
        keys.STATE: announcing.state.value,
        **dict.fromkeys((keys.TOTAL, keys.JOBS, keys.SUBMITTED, keys.FAILED, keys.UNKNOWN), 0),
        **dict.fromkeys((keys.CANCELLED, keys.RETRIED), 0),
        keys.CREATED_AT: time.time(),
        **({keys.RELEASE_AT: announcing.release_at} if announcing.release_at is not None else {}),
        **(
            {keys.CALLBACK_URL: announcing.spec.callback_url}
            if announcing.spec.callback_url is not None
            else {}
        ),
    }
