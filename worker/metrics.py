"""The worker's own Prometheus metrics (`campaign_*`) and the one-line hooks that count them where it happens.

In a worker group with a metrics port, PROMETHEUS_MULTIPROC_DIR is set before any process imports this
module, so each process writes its values to files of its own there and the group's monitor
(`worker.monitor`) adds them up in one scrape; elsewhere (the demo, tests) they count in memory.
docs/metrics.md describes each.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from redis_model.ledger import WORKER_LOST_CODE, ChunkLedger, Claim
from redis_model.message_lanes import MessageLanes, Settled
from schemas.campaign import ChunkOutcome, Outcome

# A campaign's recipients, or single messages: the `kind` label of `campaign_messages_total`.
CAMPAIGN, SINGLE = "campaign", "single"
# The gateway's endpoints: a send (/sms/json), a flash send (/sms), the status query, a held account's probe.
SEND, FLASH, STATUS, PROBE = "sms_json", "sms", "status", "probe"
OK = "ok"  # the `result` of a request the gateway answered with success

MESSAGES = Counter(
    "campaign_messages",
    "Recipients of campaigns and single messages settled, by outcome (submitted, failed, unknown, "
    "cancelled) and code (the error code of failed and unknown ones; empty otherwise)",
    ["kind", "outcome", "code"],
)
GATEWAY_SECONDS = Histogram(
    "campaign_gateway_request_seconds",
    "Time from sending a request to the gateway to reading its whole reply, by endpoint",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
GATEWAY_REQUESTS = Counter(
    "campaign_gateway_requests",
    "Requests to the gateway by endpoint and result: ok, or the error code (E403, HTTP500, CONNECT ...)",
    ["endpoint", "result"],
)
RETRIES = Counter(
    "campaign_gateway_retries",
    "Requests sent again after a transient error (E403, 429, 5xx), by the error's code",
    ["code"],
)
RATE_WAIT_SECONDS = Histogram(
    "campaign_rate_limit_wait_seconds",
    "Time a request slept for its turn on the account's rate limit (only turns that waited), by priority",
    ["priority"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RATE_CUTS = Counter(
    "campaign_rate_cuts",
    "Cuts of the account's adaptive pace (AIMD) after a burst of E403s or 429s",
)
PROCESSES = Gauge(
    "campaign_worker_processes",
    "Worker processes running (each counts 1 from boot until it stops)",
    multiprocess_mode="livesum",
)

_URGENT, _BULK = RATE_WAIT_SECONDS.labels("urgent"), RATE_WAIT_SECONDS.labels("bulk")


def count_settled(kind: str, outcome: str, code: str, amount: int) -> None:
    if amount:
        MESSAGES.labels(kind, outcome, code if outcome != Outcome.SUBMITTED.value else "").inc(amount)


def count_chunk(outcome: ChunkOutcome) -> None:
    """A campaign's chunk settled (its claim still ours): each counter it moved, as status counts them."""
    for name, amount in outcome.counts().items():
        count_settled(CAMPAIGN, name, outcome.code, amount)


def count_single_messages(settled: Sequence[Settled]) -> None:
    # Added up first: a batch is up to a thousand messages, mostly of one outcome.
    outcomes = collections.Counter((one.status.value, one.code) for one in settled)
    for (status, code), amount in outcomes.items():
        count_settled(SINGLE, status, code, amount)


@contextmanager
def gateway_request(endpoint: str) -> Iterator[None]:
    """Time one request and count its result: ok, or the code of the error it raised."""
    started = time.perf_counter()
    result = OK
    try:
        yield
    except BaseException as e:  # a cancelled request too: it is no success
        result = getattr(e, "code", None) or type(e).__name__
        raise
    finally:
        GATEWAY_SECONDS.labels(endpoint).observe(time.perf_counter() - started)
        GATEWAY_REQUESTS.labels(endpoint, result).inc()


def count_retry(code: str) -> None:
    RETRIES.labels(code).inc()


def observe_rate_wait(seconds: float, *, urgent: bool) -> None:
    (_URGENT if urgent else _BULK).observe(seconds)


def count_rate_cut() -> None:
    RATE_CUTS.inc()


class CountedLedger(ChunkLedger):
    """The chunk ledger, counting each chunk it settles (and each abandoned chunk it holds `unknown`)."""

    async def claim(self, campaign_id: str, job: int, owner: str, offset: int, size: int, policy: str,
                    **options: Any) -> tuple[Claim, int]:  # fmt: skip
        verdict, progress = await super().claim(campaign_id, job, owner, offset, size, policy, **options)
        if verdict is Claim.HELD:
            count_settled(CAMPAIGN, Outcome.UNKNOWN.value, WORKER_LOST_CODE, progress - offset)
        return verdict, progress

    async def settle(self, campaign_id: str, job: int, owner: str, start: int, outcome: ChunkOutcome,
                     **options: Any) -> bool:  # fmt: skip
        applied = await super().settle(campaign_id, job, owner, start, outcome, **options)
        if applied:
            count_chunk(outcome)
        return applied


class CountedLanes(MessageLanes):
    """The single-message lanes, counting each message settled."""

    async def settle(self, outcomes: Sequence[Settled], *args: Any, **options: Any) -> None:
        await super().settle(outcomes, *args, **options)
        count_single_messages(outcomes)
