"""The three ways a campaign's jobs and left-out rows are written: a dry run writes nothing, a staged
campaign becomes visible whole at its commit, and a progressive one from its first job.

A staged writer takes rows that can be read only once (stdin, a generator): a refusal half-way leaves
nothing behind, and its jobs are enqueued after the last row. A progressive writer takes a file that
was read through once without a refusal: each job goes to the workers as soon as it is written, so
sending starts within a page of the file, and the campaign's `publishing` lease (renewed with each
job, or each page of rows while none is written) keeps it from completing before the last row.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Protocol

import dramatiq
import redis

from producer.control import cancel
from producer.job_queue import enqueue_jobs
from redis_model.publishing import Announcement, Counted, PublishingStore
from schemas.campaign import InvalidRow, Job, Recipient
from schemas.errors import InputError, SpecError

# Status shows a lease let lapse (the producer died mid-file) as lost, and `campaign cancel` ends
# its campaign.
PUBLISH_LEASE_S = 30.0
ESTIMATE = "estimate"  # a dry run's state: what `send` would do


class Writer(Protocol):
    cancelled: bool  # by its owner while publishing: the rest of the rows are not read

    def write_invalid(self, rows: list[InvalidRow]) -> None: ...
    def write_duplicates(self, recipients: list[Recipient]) -> None: ...
    def write_suppressed(self, recipients: list[Recipient]) -> None: ...
    def write_job(self, job: Job) -> None: ...
    def page_done(self, *, wrote_jobs: bool) -> None:
        """A page of rows went through the stages."""

    def commit(self, counted: Counted) -> str:
        """After the last row: the campaign's state."""

    def release(self, jobs: int) -> None:
        """After the commit: what is left to do outside it."""

    def abandon(self, error: BaseException, counted: Counted) -> None:
        """The rows could not be read to the end, or the commit failed."""


class DryRun:
    """Counts what would be sent and writes nothing; a large file's seen numbers, which de-duplication
    keeps in Redis, are removed at the end."""

    cancelled = False

    def __init__(self, store: PublishingStore) -> None:
        self.store = store

    def write_invalid(self, rows: list[InvalidRow]) -> None:
        pass

    def write_duplicates(self, recipients: list[Recipient]) -> None:
        pass

    def write_suppressed(self, recipients: list[Recipient]) -> None:
        pass

    def write_job(self, job: Job) -> None:
        pass

    def page_done(self, *, wrote_jobs: bool) -> None:
        pass

    def commit(self, counted: Counted) -> str:
        return ESTIMATE

    def release(self, jobs: int) -> None:
        self.store.discard()

    def abandon(self, error: BaseException, counted: Counted) -> None:
        self.store.discard()


class _LeftOutRows:
    """Writes invalid, duplicate and suppressed rows for the report; duplicates a page of them at a
    time, since a file with a duplicate in every page would otherwise cost a round trip a page."""

    cancelled = False

    def __init__(self, store: PublishingStore, page_size: int) -> None:
        self.store, self.page_size = store, page_size
        self.duplicate_page: list[Recipient] = []

    def write_invalid(self, rows: list[InvalidRow]) -> None:
        self.store.push_invalid(rows)

    def write_duplicates(self, recipients: list[Recipient]) -> None:
        self.duplicate_page.extend(recipients)
        if len(self.duplicate_page) >= self.page_size:
            self._push_duplicates()

    def write_suppressed(self, recipients: list[Recipient]) -> None:
        self.store.push_suppressed(recipients)

    def _push_duplicates(self) -> None:
        if self.duplicate_page:
            self.store.push_duplicates(self.duplicate_page)
            self.duplicate_page = []


class Staged(_LeftOutRows):
    """Jobs written where workers will find them, but announced, counted and enqueued only at the
    commit: until then nothing of the campaign is visible, and an abandoned one is removed."""

    def __init__(
        self,
        store: PublishingStore,
        announcement: Announcement,
        broker: dramatiq.Broker | None,
        page_size: int,
    ) -> None:
        super().__init__(store, page_size)
        self.announcement, self.broker = announcement, broker

    def write_job(self, job: Job) -> None:
        self.store.stage_job(job)

    def page_done(self, *, wrote_jobs: bool) -> None:
        pass

    def commit(self, counted: Counted) -> str:
        self._push_duplicates()
        return self.store.finish(counted, announcing=self.announcement)

    def release(self, jobs: int) -> None:
        assert self.broker is not None, "publishing needs a broker"
        spec = self.announcement.spec
        enqueue_jobs(self.broker, spec.campaign_id, spec.type, range(jobs))

    def abandon(self, error: BaseException, counted: Counted) -> None:
        self.store.discard()


class Progressive(_LeftOutRows):
    """Each job published and enqueued as soon as it is written, the first announcing the campaign,
    under the producer's publishing lease; jobs and recipients are counted in Redis with each job."""

    def __init__(
        self,
        client: redis.Redis,
        store: PublishingStore,
        announcement: Announcement,
        broker: dramatiq.Broker | None,
        page_size: int,
        on_visible: Callable[[], None] | None = None,  # told when the first job is enqueued
    ) -> None:
        super().__init__(store, page_size)
        self.client = client
        self.announcement = announcement
        self.broker = broker
        self.on_visible = on_visible
        self.campaign_id, self.type = announcement.spec.campaign_id, announcement.spec.type
        self.announced = False

    def write_job(self, job: Job) -> None:
        announcing = None if self.announced else self.announcement
        if self.store.publish_job(job, PUBLISH_LEASE_S, announcing=announcing):
            self.cancelled = True  # by its owner: this job is settled as cancelled, no more are written
        self.announced = True
        assert self.broker is not None, "publishing needs a broker"
        enqueue_jobs(self.broker, self.campaign_id, self.type, [job.index])
        if job.index == 0 and self.on_visible is not None:
            self.on_visible()

    def page_done(self, *, wrote_jobs: bool) -> None:
        """Renews the lease with every page of rows that published no job (each job renewed it)."""
        if self.announced and not self.cancelled and not wrote_jobs:
            self.cancelled = self.store.renew_lease(PUBLISH_LEASE_S)

    def commit(self, counted: Counted) -> str:
        self._push_duplicates()
        announcing = None if self.announced else self.announcement
        state = self.store.finish(_counted_in_jobs(counted), announcing=announcing)
        self.announced = True
        return state

    def release(self, jobs: int) -> None:
        pass

    def abandon(self, error: BaseException, counted: Counted) -> None:
        """Nothing visible yet: nothing is left behind. Jobs already enqueued (the file changed after it
        was checked, or the producer was interrupted): the campaign is cancelled, so that no more of it
        goes out, and the user told so."""
        if not self.announced:
            self.store.discard()
            return
        cid = self.campaign_id
        try:
            with contextlib.suppress(InputError):  # finished already
                cancel(self.client, cid, retention_s=self.store.retention_s)
            self.store.finish_abandoned(_counted_in_jobs(counted))
        except redis.RedisError:
            return  # the error that stopped the reading says more
        if isinstance(error, InputError):
            raise SpecError(
                f"{error}; campaign {cid} was cancelled: the file changed after it was checked, and "
                f"{counted.total} of its recipients had been queued (see `campaign status {cid}`)"
            ) from error


def _counted_in_jobs(counted: Counted) -> Counted:
    """Without the recipients and jobs, which each published job counted in Redis."""
    return counted._replace(total=None, jobs=None)
