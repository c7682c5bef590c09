"""`campaign resend`: publish a campaign's failed or unknown recipients again, as new jobs of that campaign.

The chunks picked are found in the ledger's outcome records. One transaction marks them
republished, moves their recipients from `failed`/`unknown` back to pending and adds the
new jobs, so the counts still add up to the total and a second resend never picks the same
chunk; a lock keeps two resends apart. Unknown recipients may already have the message:
the result says how many may receive it twice.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import dramatiq
import msgspec
import redis

from producer.job_queue import enqueue_jobs
from redis_model.jobs import read_job
from redis_model.outcomes import OutcomeRecord, outcome_records
from redis_model.resend import ResendStore
from schemas.campaign import (
    SUPPRESSED_CODE,
    CampaignSpec,
    CampaignState,
    ChunkOutcome,
    Job,
    Outcome,
    Recipient,
)
from schemas.errors import InputError, UnknownCampaignError
from schemas.settings import Settings


class ResendResult(msgspec.Struct, frozen=True, kw_only=True):
    campaign_id: str
    republished: int
    failed: int
    unknown: int
    jobs: int
    may_duplicate: int  # unknown recipients: their first send may have reached them
    state: str


def resend(
    client: redis.Redis,
    broker: dramatiq.Broker,
    settings: Settings,
    campaign_id: str,
    *,
    failed: bool,
    unknown: bool,
) -> ResendResult:
    if not (failed or unknown):
        raise InputError("say what to resend: --failed, --unknown or both")
    wanted = {outcome for outcome, asked in ((Outcome.FAILED, failed), (Outcome.UNKNOWN, unknown)) if asked}
    store = ResendStore(client, campaign_id)
    token = store.lock()
    if token is None:
        raise InputError(f"another resend of campaign {campaign_id!r} is running; try again when it ends")
    try:
        # Read under the lock: the job count is where our new jobs start.
        target = store.target()
        if target is None:
            raise UnknownCampaignError(f"no campaign {campaign_id!r} in Redis")
        if target.state == CampaignState.CANCELLED:
            raise InputError(f"campaign {campaign_id!r} is cancelled; nothing of it is sent again")
        lease = target.publishing_lease
        if lease is not None and lease > time.time():  # its producer is adding jobs
            raise InputError(f"campaign {campaign_id!r} is still being published; resend once it is")
        expires_at = target.spec.expires_at
        if expires_at is not None and time.time() > expires_at:
            when = datetime.fromtimestamp(expires_at, UTC).isoformat(timespec="seconds")
            raise InputError(f"campaign {campaign_id!r} expired at {when}; nothing of it is sent late")
        return _republish(store, broker, settings, target.spec, wanted, target.jobs)
    finally:
        store.unlock(token)


Picked = list[OutcomeRecord]


def _republish(
    store: ResendStore,
    broker: dramatiq.Broker,
    settings: Settings,
    spec: CampaignSpec,
    wanted: set[Outcome],
    first_job: int,
) -> ResendResult:
    campaign_id = spec.campaign_id
    picked = _picked_chunks(store.client, campaign_id, wanted)
    staged: list[int] = []
    # New jobs keep the time zones of the jobs they come from (a sending window holds per job).
    batches: dict[tuple[str, ...], list[Recipient]] = {}
    loaded: dict[int, Job] = {}
    size = settings.job_size
    try:
        for (job, offset), outcome, _ in picked:
            if job not in loaded:  # picked is sorted by job: one job in memory at a time
                loaded = {job: _job(store, job)}
            source = loaded[job]
            batch = batches.setdefault(source.zones, [])
            batch.extend(_recipients_to_resend(source.recipients[offset : offset + outcome.size], outcome))
            while len(batch) >= size:
                staged.append(_stage(store, first_job + len(staged), batch[:size], source.zones))
                batch[:] = batch[size:]
        for zones, batch in batches.items():
            if batch:
                staged.append(_stage(store, first_job + len(staged), batch, zones))
        tally = _Tally(picked)
        if staged:
            _commit(store, picked, tally, len(staged))
    except BaseException:
        if staged:
            store.drop_jobs(staged)
        raise
    enqueue_jobs(broker, campaign_id, spec.type, range(first_job, first_job + len(staged)))
    return ResendResult(
        campaign_id=campaign_id,
        republished=tally.failed + tally.unknown,
        failed=tally.failed,
        unknown=tally.unknown,
        jobs=len(staged),
        may_duplicate=tally.unknown,
        state=store.state(),
    )


def _job(store: ResendStore, index: int) -> Job:
    job = read_job(store.client, store.campaign_id, index)
    if job is None:  # a settled chunk's job goes only with the whole campaign
        raise UnknownCampaignError(f"no campaign {store.campaign_id!r} in Redis")
    return job


def _picked_chunks(client: redis.Redis, campaign_id: str, wanted: set[Outcome]) -> Picked:
    """Chunks not republished yet that hold a recipient in a wanted outcome, by job and offset."""

    def wants(outcome: ChunkOutcome) -> bool:
        if outcome.republished or outcome.code == SUPPRESSED_CODE:  # opted out: never sent again
            return False
        # Dropped nodes are resent only when the ledger knows which recipients they were.
        dropped = (
            outcome.outcome is Outcome.SUBMITTED and outcome.attributed and "" in outcome.full_message_ids()
        )
        return outcome.outcome in wanted or (Outcome.FAILED in wanted and dropped)

    return sorted(
        (picked for picked in outcome_records(client, campaign_id) if wants(picked.outcome)),
        key=lambda item: item[0],
    )


def _recipients_to_resend(chunk: list[Recipient], outcome: ChunkOutcome) -> list[Recipient]:
    if outcome.outcome is Outcome.SUBMITTED:  # only the nodes the gateway dropped
        return [r for r, message_id in zip(chunk, outcome.full_message_ids(), strict=True) if not message_id]
    return chunk


class _Tally:
    """The recipients picked, by outcome, and the failed ones by code."""

    def __init__(self, picked: Picked) -> None:
        self.failed = self.unknown = 0
        self.failed_by_code: dict[str, int] = {}
        for _, outcome, _ in picked:
            if outcome.outcome is Outcome.UNKNOWN:
                self.unknown += outcome.size
                continue
            failed = outcome.counts()[Outcome.FAILED]
            self.failed += failed
            if outcome.code:
                self.failed_by_code[outcome.code] = self.failed_by_code.get(outcome.code, 0) + failed


def _stage(store: ResendStore, index: int, recipients: list[Recipient], zones: tuple[str, ...]) -> int:
    """Write a job no message points to yet: invisible to workers until the commit and the enqueue."""
    store.stage_job(Job(campaign_id=store.campaign_id, index=index, recipients=recipients, zones=zones))
    return index


def _commit(store: ResendStore, picked: Picked, tally: _Tally, jobs: int) -> None:
    applied = store.reopen(
        picked, failed=tally.failed, unknown=tally.unknown, failed_by_code=tally.failed_by_code, new_jobs=jobs
    )
    if not applied:  # our lock outlived its TTL and another resend took these chunks
        raise InputError(
            f"another resend of campaign {store.campaign_id!r} republished these recipients first"
        )
