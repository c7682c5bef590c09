"""Batch recipients into jobs: grouped by the time zones a sending window waits on, each job sized by
its place in the campaign (`JOB_SHARE`)."""

from __future__ import annotations

import math
from collections.abc import Iterator

from producer.timezones import zones_of
from schemas.campaign import CampaignSpec, Job, Recipient
from schemas.settings import Settings

# A job holds at most this share of the recipients before it or after it (and never more than
# CAMPAIGN_JOB_SIZE): the first jobs are small, so that many threads start on a campaign at once,
# and so are the last, so that they end it together rather than a few of them sending its last
# large jobs while the others wait (equal jobs left threads idle at a campaign's end, and a small
# campaign in few large jobs left most threads idle throughout).
JOB_SHARE = 1 / 16


class Batching:
    """Recipients waiting for a job, and the jobs cut from them so far."""

    def __init__(self, spec: CampaignSpec, settings: Settings, expected_rows: int | None) -> None:
        self.campaign_id = spec.campaign_id
        self.by_zones = spec.send_window is not None  # a job waits for its window as a whole
        self.job_size, self.chunk_size = settings.job_size, settings.chunk_size
        self.expected_rows = expected_rows  # None: unknown; each job but the last is CAMPAIGN_JOB_SIZE
        # Recipients not in a job yet, by the time zones they may be in, else all under ().
        self.waiting: dict[tuple[str, ...], list[Recipient]] = {}
        self.jobs = 0
        self.published = 0  # recipients in jobs so far

    def add(self, recipients: list[Recipient]) -> None:
        if not self.by_zones:
            self.waiting.setdefault((), []).extend(recipients)
        else:
            for r in recipients:
                self.waiting.setdefault(zones_of(r.to), []).append(r)

    def ready(self, *, final: bool, left_out: int) -> Iterator[Job]:
        """The jobs that are full (with `final`, every recipient waiting), each counted as it is
        given; `left_out`: the rows read so far that are in no job (invalid, duplicate, suppressed)."""
        for zones, waiting in self.waiting.items():
            while len(waiting) >= (size := self._job_size(left_out)) or (final and waiting):
                batch, waiting[:] = waiting[:size], waiting[size:]
                job = Job(campaign_id=self.campaign_id, index=self.jobs, recipients=batch, zones=zones)
                self.jobs += 1
                self.published += len(batch)
                yield job

    def _job_size(self, left_out: int) -> int:
        """Whole chunks, at most `JOB_SHARE` of the rows before the job or after it, at least one
        chunk, at most CAMPAIGN_JOB_SIZE."""
        if self.expected_rows is None:
            return self.job_size
        after = self.expected_rows - self.published - left_out
        chunks = math.ceil(min(self.published, after) * JOB_SHARE / self.chunk_size)
        return min(self.job_size, max(1, chunks) * self.chunk_size)
