"""`campaign resend`: publish a campaign's failed or unknown recipients again, as new jobs of that campaign.

The chunks picked are found in the ledger's outcome records. One transaction marks them
republished, moves their recipients from `failed`/`unknown` back to pending and adds the
new jobs, so the counts still add up to the total and a second resend never picks the same
chunk; a lock keeps two resends apart. Unknown recipients may already have the message:
the result says how many may receive it twice. `--undelivered` (`resend_undelivered`) publishes
again, under the same lock, the submitted recipients whose final delivery report was undelivered for
a temporary reason.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import dramatiq
import msgspec
import redis

from producer.job_queue import enqueue_jobs
from producer.resend_jobs import StagedJobs
from producer.resend_undelivered import republish_undelivered
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
    # `--undelivered`: recipients whose final report was undelivered for a temporary reason, published
    # again, and those of them left out as on the account's suppression list (marketing).
    undelivered: int = 0
    suppressed: int = 0


def resend(
    client: redis.Redis,
    broker: dramatiq.Broker,
    settings: Settings,
    campaign_id: str,
    *,
    failed: bool,
    unknown: bool,
    undelivered: bool = False,
) -> ResendResult:
    if undelivered and (failed or unknown):
        raise InputError("--undelivered is a resend of its own: run it apart from --failed and --unknown")
    if not (failed or unknown or undelivered):
        raise InputError("say what to resend: --failed, --unknown (or both), or --undelivered")
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
        if undelivered:
            return _republish_undelivered(store, broker, settings, target.spec, target.jobs)
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
    staged = StagedJobs(store, first_job, settings.job_size)
    loaded: dict[int, Job] = {}
    try:
        for (job, offset), outcome, _ in picked:
            if job not in loaded:  # picked is sorted by job: one job in memory at a time
                loaded = {job: _job(store, job)}
            source = loaded[job]
            staged.add(
                _recipients_to_resend(source.recipients[offset : offset + outcome.size], outcome),
                source.zones,
            )
        staged.flush()
        tally = _Tally(picked)
        if staged.staged:
            _commit(store, picked, tally, len(staged.staged))
    except BaseException:
        staged.drop()
        raise
    enqueue_jobs(broker, campaign_id, spec.type, staged.indexes())
    return ResendResult(
        campaign_id=campaign_id,
        republished=tally.failed + tally.unknown,
        failed=tally.failed,
        unknown=tally.unknown,
        jobs=len(staged.staged),
        may_duplicate=tally.unknown,
        state=store.state(),
    )


def _republish_undelivered(
    store: ResendStore, broker: dramatiq.Broker, settings: Settings, spec: CampaignSpec, first_job: int
) -> ResendResult:
    done = republish_undelivered(store, settings, spec, first_job)
    enqueue_jobs(broker, spec.campaign_id, spec.type, range(first_job, first_job + done.jobs))
    return ResendResult(
        campaign_id=spec.campaign_id,
        republished=done.resent,
        failed=0,
        unknown=0,
        jobs=done.jobs,
        may_duplicate=0,
        state=store.state(),
        undelivered=done.resent,
        suppressed=done.suppressed,
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


def _commit(store: ResendStore, picked: Picked, tally: _Tally, jobs: int) -> None:
    applied = store.reopen(
        picked, failed=tally.failed, unknown=tally.unknown, failed_by_code=tally.failed_by_code, new_jobs=jobs
    )
    if not applied:  # our lock outlived its TTL and another resend took these chunks
        raise InputError(
            f"another resend of campaign {store.campaign_id!r} republished these recipients first"
        )
