"""The new jobs of a `campaign resend`: recipients batched into jobs of at most the job size, each batch
keeping the time zones of the jobs its recipients come from (a sending window holds per job), staged
where no dramatiq message points to them until the resend commits."""

from __future__ import annotations

from redis_model.resend import ResendStore
from schemas.campaign import Job, Recipient


class StagedJobs:
    """Jobs staged from `first_job` on; `drop` them if the resend does not commit."""

    def __init__(self, store: ResendStore, first_job: int, size: int) -> None:
        self.store, self.first_job, self.size = store, first_job, size
        self.staged: list[int] = []
        self._batches: dict[tuple[str, ...], list[Recipient]] = {}

    def add(self, recipients: list[Recipient], zones: tuple[str, ...]) -> None:
        batch = self._batches.setdefault(zones, [])
        batch.extend(recipients)
        while len(batch) >= self.size:
            self._stage(batch[: self.size], zones)
            batch[:] = batch[self.size :]

    def flush(self) -> None:
        """Stage what is left of every batch."""
        for zones, batch in self._batches.items():
            if batch:
                self._stage(batch, zones)
        self._batches = {}

    def indexes(self) -> range:
        return range(self.first_job, self.first_job + len(self.staged))

    def drop(self) -> None:
        if self.staged:
            self.store.drop_jobs(self.staged)

    def _stage(self, recipients: list[Recipient], zones: tuple[str, ...]) -> None:
        """Write a job no message points to yet: invisible to workers until the commit and the enqueue."""
        index = self.first_job + len(self.staged)
        campaign_id = self.store.campaign_id
        self.store.stage_job(
            Job(campaign_id=campaign_id, index=index, recipients=list(recipients), zones=zones)
        )
        self.staged.append(index)
