"""`campaign resend --undelivered`: publish again, as new jobs of the campaign, the submitted recipients
whose final delivery report is undelivered with a temporary trace (`schemas.delivery.TEMPORARY_TRACES`:
absent, switched off, busy, a network error, expired); never those delivered, opted out, with a dead
number or with no final report yet.

They are found in the ledger: each submitted chunk's message ids, read with their requests' delivery
strings a page of chunks a round trip. A marketing campaign's are looked up in the account's
suppression list first, as publishing does (an opt-out since is never sent again; the worker looks
again at send time). One step (`ResendStore.reopen_undelivered`) marks each one `resent` in its chunk's
outcome record, moves it from `submitted` and its report from `undelivered` (and its trace) back to
pending and adds the new jobs: its new message then counts, and is reported, in its place, and a second
resend picks only the recipients a newer report left undelivered.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import NamedTuple

import msgspec
import redis

from producer import suppression
from producer.resend_jobs import StagedJobs
from redis_model.delivery import request_ids
from redis_model.jobs import read_job
from redis_model.outcomes import OutcomeRecord, campaign_deliveries, outcome_records
from redis_model.resend import ResendStore
from schemas.campaign import MARKETING_TYPES, CampaignSpec, ChunkOutcome, Job, Outcome
from schemas.delivery import TEMPORARY_TRACES, DeliveryStatus
from schemas.errors import InputError, UnknownCampaignError
from schemas.settings import Settings

# Chunks whose requests' delivery strings are read in one round trip (each at most 6 KB).
PAGE = 100


class Undelivered(NamedTuple):
    """A chunk's recipients to send again: their index in the chunk, and each one's trace."""

    record: OutcomeRecord
    chosen: list[tuple[int, str]]


class Redelivery(NamedTuple):
    resent: int
    suppressed: int  # left out: on the account's suppression list now
    jobs: int  # staged from the caller's first job on, committed; the caller enqueues them


def republish_undelivered(
    store: ResendStore, settings: Settings, spec: CampaignSpec, first_job: int
) -> Redelivery:
    """Stage and commit the new jobs (under the caller's resend lock)."""
    client, sid = store.client, settings.sid
    marketing = spec.type in MARKETING_TYPES and suppression.in_use(client, sid)
    staged = StagedJobs(store, first_job, settings.job_size)
    marked: list[tuple[OutcomeRecord, ChunkOutcome]] = []
    by_trace: Counter[str] = Counter()
    suppressed = 0
    loaded: dict[int, Job] = {}
    try:
        for record, chosen in sorted(
            undelivered(client, spec.campaign_id), key=lambda found: found.record.where
        ):
            (job, offset), outcome, _ = record
            if job not in loaded:  # sorted by job: one job in memory at a time
                loaded = {job: _job(store, job)}
            chunk = loaded[job].recipients[offset : offset + outcome.size]
            if marketing:
                listed = set(store.listed(sid, [chunk[index] for index, _ in chosen]))
                suppressed += len(listed)
                chosen = [pick for position, pick in enumerate(chosen, start=1) if position not in listed]
            if not chosen:
                continue
            staged.add([chunk[index] for index, _ in chosen], loaded[job].zones)
            resent = sorted({*outcome.resent, *(index for index, _ in chosen)})
            marked.append((record, msgspec.structs.replace(outcome, resent=resent)))
            by_trace.update(trace for _, trace in chosen)
        staged.flush()
        if staged.staged and not store.reopen_undelivered(
            marked, by_trace=by_trace, new_jobs=len(staged.staged)
        ):
            # our lock outlived its TTL and another resend took these recipients
            raise InputError(
                f"another resend of campaign {spec.campaign_id!r} republished these recipients first"
            )
    except BaseException:
        staged.drop()
        raise
    return Redelivery(resent=sum(by_trace.values()), suppressed=suppressed, jobs=len(staged.staged))


def undelivered(client: redis.Redis, campaign_id: str) -> Iterator[Undelivered]:
    """Each submitted chunk holding recipients not resent yet whose final report is undelivered with a
    temporary trace; memory is a page of chunks."""
    page: list[OutcomeRecord] = []
    for record in outcome_records(client, campaign_id):
        if record.outcome.outcome is Outcome.SUBMITTED and record.outcome.attributed:
            page.append(record)
            if len(page) == PAGE:
                yield from _undelivered_in(client, campaign_id, page)
                page = []
    if page:
        yield from _undelivered_in(client, campaign_id, page)


def _undelivered_in(
    client: redis.Redis, campaign_id: str, page: list[OutcomeRecord]
) -> Iterator[Undelivered]:
    ids = {record.where: record.outcome.full_message_ids() for record in page}
    deliveries = campaign_deliveries(
        client, campaign_id, request_ids([i for found in ids.values() for i in found])
    )
    for record in page:
        resent = set(record.outcome.resent)
        chosen = []
        for index, message_id in enumerate(ids[record.where]):
            if not message_id or index in resent:
                continue
            found = deliveries.of(message_id)
            if (
                found is not None
                and found.status is DeliveryStatus.UNDELIVERED
                and found.trace in TEMPORARY_TRACES
            ):
                chosen.append((index, found.trace))
        if chosen:
            yield Undelivered(record, chosen)


def _job(store: ResendStore, index: int) -> Job:
    job = read_job(store.client, store.campaign_id, index)
    if job is None:  # a settled chunk's job goes only with the whole campaign
        raise UnknownCampaignError(f"no campaign {store.campaign_id!r} in Redis")
    return job
