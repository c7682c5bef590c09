"""Where one run of a job stands: its campaign, its recipients, its name in claims, what it has sent."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from redis_model.sending_state import JobStart
from schemas.campaign import CampaignSpec, CampaignState, Job, Recipient
from worker.context import WorkerContext
from worker.payload import PayloadBuilder, chunk_at, chunk_size
from worker.turns import TurnAhead


class JobRun:
    """One delivery of a job's message, from its start (`JobStart`) until it stops; `settled` is how
    far the job has come, which a claim's verdict may move on (another run settled, a stale chunk held)."""

    def __init__(
        self,
        ctx: WorkerContext,
        log: Any,
        campaign_id: str,
        job_index: int,
        start: JobStart,
        job: Job,
        *,
        delivery: str,
        last_attempt: bool,
        urgent: bool,
    ) -> None:
        self.ctx, self.log = ctx, log
        self.campaign_id, self.job_index = campaign_id, job_index
        self.spec: CampaignSpec = start.spec
        self.job = job
        self.recipients: Sequence[Recipient] = job.recipients
        self.builder = PayloadBuilder(start.spec, ctx.settings)
        self.size = chunk_size(start.spec, ctx.settings)
        self.last_attempt, self.urgent = last_attempt, urgent
        # A fresh run id: two runs of one message (a redelivery while the first runs) never share claims.
        self.owner = f"{ctx.identity}:{delivery}:{uuid.uuid4().hex[:8]}"
        self.state: str = start.state
        self.settled = start.settled
        self.stopped = False  # the job ended before its last recipient: cancelled, or gone from Redis
        self.sent = 0  # chunks this run sent
        self.waited = 0.0  # seconds this run has slept on the account's rate limit
        self.shown_open = False  # a job that waited for its window is no longer shown waiting
        self.turns = TurnAhead(ctx.rate_limit, urgent=urgent, marketing=self.builder.marketing)

    @property
    def over(self) -> bool:
        return self.stopped or self.settled >= len(self.recipients)

    @property
    def cancelled(self) -> bool:
        return self.state == CampaignState.CANCELLED

    def chunk_from(self, offset: int) -> Sequence[Recipient]:
        """A chunk of the job's recipients: up to the chunk size from `offset` on."""
        return chunk_at(self.recipients, offset, self.size)

    def rest(self) -> Sequence[Recipient]:
        """Every recipient of the job not settled yet."""
        return chunk_at(self.recipients, self.settled, len(self.recipients))
