"""Reconciliation: the messages whose final delivery report has not come `CAMPAIGN_DLR_POLL_AFTER` after
their submission are asked for with Kaleyra's status query, and the answers recorded as received reports
would be (`AsyncDeliveryReports.record`: idempotent, the most final wins, a message counts once).

A poller runs on each worker process's event loop, started and stopped with its single-message consumer.
Every few seconds it claims the requests due in the index (`redis_model.unreported`), asks for their
nodes without a final record, `IDS_A_QUERY` ids a query, each query booked on the account's rate limit,
then removes each request whose nodes are all final, or puts it back for twice its age (doubling from
the first look), until `MAX_AGE_S` after its submission: then the rest stays pending.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import NamedTuple

import redis

from redis_model.delivery import AsyncDeliveryReports
from redis_model.unreported import Unreported, UnreportedIndex
from schemas.delivery import DeliveryReport, delivery_status
from schemas.errors import GatewayError
from worker.background import BackgroundLoop
from worker.context import WorkerContext
from worker.gates import account_open

# How often a poller looks for due requests (more often than CAMPAIGN_DLR_POLL_AFTER is no use).
POLL_EVERY_S = 5.0
# Requests a pass claims: at most this many x 1000 ids, asked for within the claim's lease.
REQUESTS_A_PASS = 20
CLAIM_LEASE_S = 600.0
# Ids a status query names: about 4 kB of URL with Kaleyra's ids.
IDS_A_QUERY = 100
# A query is one request to the account, whatever its ids: it books one message's worth of the rate.
QUERY_COST = 1
# Past this age (from its submission) a request is no longer asked for: its rest stays pending.
MAX_AGE_S = 72 * 3600.0
# After a gateway fault (the key refused, no answer), the poller's pause doubles up to this.
FAULT_PAUSE_MAX_S = 300.0
# A trace as the receiver keeps it.
TRACE_CHARS = 40


class PollPass(NamedTuple):
    """What one pass did."""

    requests: int = 0  # claimed
    queries: int = 0
    recorded: int = 0  # reports that moved a node's record on
    done: int = 0  # every node final (or the request gone): out of the index
    gave_up: int = 0  # past the maximum age: out of the index, the rest pending
    fault: GatewayError | None = None  # the pass stopped at it; its requests are asked again later


class DeliveryPoller(BackgroundLoop):
    """Runs on the worker's event loop from `start()` until `stop()`; does nothing when polling is off
    (`poll_after_s` 0). Any number of pollers may run at once: a request is claimed by one at a time."""

    def __init__(
        self,
        ctx: WorkerContext,
        *,
        poll_after_s: float | None = None,
        every_s: float | None = None,
        ids_a_query: int = IDS_A_QUERY,
        max_age_s: float = MAX_AGE_S,
        requests_a_pass: int = REQUESTS_A_PASS,
    ) -> None:
        super().__init__(ctx)
        self.poll_after_s = ctx.settings.dlr_poll_after_s if poll_after_s is None else poll_after_s
        self.every_s = min(POLL_EVERY_S, self.poll_after_s) if every_s is None else every_s
        self.ids_a_query = ids_a_query
        self.max_age_s = max_age_s
        self.requests_a_pass = requests_a_pass
        self.log = ctx.log.bind(dlr_poll=True)
        self._index: UnreportedIndex | None = None
        self._reports: AsyncDeliveryReports | None = None

    @property
    def index(self) -> UnreportedIndex:
        if self._index is None:
            self._index = UnreportedIndex(self.ctx.store.client)
        return self._index

    @property
    def reports(self) -> AsyncDeliveryReports:
        if self._reports is None:
            settings = self.ctx.settings  # opted-out numbers join the suppression list, as received ones do
            account = settings.sid if settings.dlr_suppress else None
            self._reports = AsyncDeliveryReports(self.ctx.store.client, suppress_opt_outs_of=account)
        return self._reports

    def start(self) -> None:
        """Start polling (call on the event loop); nothing when polling is off."""
        if self.poll_after_s <= 0:
            return
        self.begin()

    async def stop(self) -> None:
        """Stop polling: a pass in progress is cancelled after a moment (what it claimed is taken again
        once its claim's lease is over)."""
        await self.end()

    async def _run(self) -> None:
        pause = self.every_s
        while not self._stopped:
            try:
                done = await self.poll_once() if await account_open(self.ctx, self.log) else PollPass()
            except redis.RedisError as e:
                self.log.error("dlr.poll_failed", reason=f"Redis: {type(e).__name__}")
                done = PollPass()
            except Exception as e:
                self.log.exception("dlr.poll_failed", reason=type(e).__name__)
                done = PollPass()
            if done.fault is not None:
                pause = min(max(2 * pause, 1.0), FAULT_PAUSE_MAX_S)
                fault = done.fault
                self.log.warning("dlr.poll_fault", code=fault.code, reason=fault.message, pause_s=pause)
            else:
                pause = self.every_s
            if done.queries or done.done or done.gave_up:
                self.log.info("dlr.polled", **done._replace(fault=None)._asdict())
            if done.requests < self.requests_a_pass or done.fault is not None:
                await self._pause(pause)  # a full pass goes on at once: there may be more due

    async def poll_once(self, *, now: float | None = None) -> PollPass:
        """One pass: claim the due requests, ask for their nodes without a final record, record the
        answers, then remove each request or put it back for later."""
        now = time.time() if now is None else now
        claimed = await self.index.claim_due(now, self.requests_a_pass, lease_s=CLAIM_LEASE_S)
        asking = [request for request in claimed if _open(request)]
        queries, recorded, fault = 0, 0, None
        finals: set[str] = set()
        for ids in _batches([f"{r.request_id}:{p}" for r in asking for p in r.pending], self.ids_a_query):
            try:
                answered, moved = await self._ask(ids, now)
            except GatewayError as e:
                fault = e
                break
            queries, recorded = queries + 1, recorded + moved
            finals.update(answered)
        done, gave_up, later = self._verdicts(claimed, finals, now, fault)
        await self.index.settle(done + gave_up, later)
        return PollPass(len(claimed), queries, recorded, len(done), len(gave_up), fault)

    async def _ask(self, message_ids: Sequence[str], now: float) -> tuple[list[str], int]:
        """Book a query's turn, ask for the ids, record the answers; returns the ids now final, and how
        many records moved on."""
        await self.ctx.rate_limit.wait_turn(QUERY_COST, counted=False)  # no message: not the daily cap's
        answers = await self.ctx.gateway.statuses(message_ids)
        reports = [
            DeliveryReport(answer.campaign_id, delivery_status(answer.status),
                           answer.status_details.strip().upper()[:TRACE_CHARS], now, timed=False)
            for answer in answers
        ]  # fmt: skip
        recorded = await self.reports.record(reports) if reports else None
        finals = [report.message_id for report in reports if report.status.final]
        return finals, recorded.recorded if recorded else 0

    def _verdicts(
        self, claimed: Sequence[Unreported], finals: set[str], now: float, fault: GatewayError | None
    ) -> tuple[list[str], list[str], dict[str, float]]:
        """Each claimed request: done (every node final, or gone), given up (past the maximum age), or
        to look at again later: at twice its age, or after `poll_after_s` when the pass met a fault."""
        done, gave_up, later = [], [], {}
        for request in claimed:
            header = request.header
            if not _open(request):
                done.append(request.request_id)
                continue
            assert header is not None
            final = request.final + sum(f"{request.request_id}:{p}" in finals for p in request.pending)
            age = now - header.submitted_at
            if final >= header.nodes:
                done.append(request.request_id)
            elif age >= self.max_age_s and fault is None:
                gave_up.append(request.request_id)
                self.log.info("dlr.gave_up", request_id=request.request_id, pending=header.nodes - final)
            else:
                wait = self.poll_after_s if fault is not None else max(self.poll_after_s, age)
                later[request.request_id] = min(now + wait, header.submitted_at + self.max_age_s)
        return done, gave_up, later


def _open(request: Unreported) -> bool:
    """Whether the request has nodes to ask for: its delivery string is there, says its nodes (a
    header from before they were stored does not) and not all of them are final."""
    header = request.header
    return header is not None and header.nodes > 0 and request.final < header.nodes


def _batches(ids: list[str], size: int) -> list[list[str]]:
    return [ids[at : at + size] for at in range(0, len(ids), size)]
