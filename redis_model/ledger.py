"""The chunk ledger: a chunk is claimed before its POST and settled after it.

A claim is a lease (`owner|deadline|offset|size`) on the job's next chunk. A redelivered
job finds a live claim and waits (`busy`). An expired claim, or one left by an earlier
attempt of the same delivery, means the outcome is unknown; the campaign's policy
decides: `hold` settles that chunk as `unknown`, `resend` claims it again and counts it
`resent`. The claim that starts a chunk also reads the campaign's state: a paused or cancelled
campaign is not claimed from, and the verdict says which. Settling stores the chunk's outcome
(message ids included) and advances the job's progress and the counters in the same script,
only while the claim is still ours, so counters are derived from ledger transitions.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from typing import Literal

import redis
import redis.asyncio as aioredis
import structlog
import tenacity

from redis_model import delivery, keys, records
from redis_model.scripts import source
from schemas.campaign import SUPPRESSED_CODE, ChunkOutcome, Outcome
from schemas.error_codes import transient

SETTLE_PATIENCE_S = 60

# The code of recipients whose chunk's worker vanished mid-send: their outcome is unknown.
WORKER_LOST_CODE = "WORKER_LOST"
# The policy for a stale claim that never resends it (cancelling, failing the rest): settle it unknown.
HOLD: Literal["hold"] = "hold"


class Claim(enum.Enum):
    CLAIMED = "claimed"  # ours: send it
    BUSY = "busy"  # another live worker is sending this job's chunk: come back later
    HELD = "held"  # an abandoned chunk was settled `unknown`: continue from the new progress
    SETTLED = "settled"  # already done: continue from the progress
    PAUSED = "paused"  # nothing claimed (asked `while_running`): come back later
    CANCELLED = "cancelled"  # nothing claimed (asked `while_running`): settle the rest as cancelled


class ChunkLedger:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        lease_ms: int,
        retention_s: float,
        poll_after_s: float = 0.0,
        pause_on_failures: tuple[float, int] = (0.0, 0),
    ) -> None:
        self.client = client
        self.lease_ms = lease_ms
        self.retention_s = int(retention_s)  # a campaign that finishes as a chunk settles expires after it
        # A request Kaleyra accepted is indexed for the status query this long after (0: not indexed).
        self.poll_after_s = poll_after_s
        # A campaign whose failures pass this share of at least this many attempted pauses itself (0: never).
        self.pause_share, self.pause_least = pause_on_failures
        self._claim = client.register_script(source("claim"))
        self._settle_lost = client.register_script(source("settle_lost"))
        self._settle = client.register_script(source("settle"))
        self._release = client.register_script(source("release"))

    async def claim(
        self,
        campaign_id: str,
        job: int,
        owner: str,
        offset: int,
        size: int,
        policy: str,
        *,
        while_running: bool = False,
        now_ms: int | None = None,
    ) -> tuple[Claim, int]:
        """Claim the job's recipients [offset, offset + size); returns the verdict and the job's progress.

        `while_running`: a paused or cancelled campaign is not claimed from (the verdict says which),
        so the claim that starts a chunk reads the campaign's state in the same round trip."""
        now_ms = now_ms if now_ms is not None else _now_ms()
        campaign = keys.campaign(campaign_id)
        ledger_keys = [campaign, keys.progress(campaign_id), keys.claims(campaign_id)]
        while True:
            verdict, settled, *stale = await self._claim(
                keys=ledger_keys,
                args=[job, owner, now_ms, self.lease_ms, offset, size, policy, "1" if while_running else "0"],
            )
            if verdict != b"stale":
                return Claim(verdict.decode()), int(settled)
            # A claim outlived its worker: everything up to the end of its chunk may have been sent.
            reach, claim = int(stale[0]), stale[1]
            lost = ChunkOutcome(outcome=Outcome.UNKNOWN, size=reach - int(settled), code=WORKER_LOST_CODE)
            if await self._settle_lost(
                keys=[*ledger_keys, keys.outcomes(campaign_id), *keys.retained_keys(campaign_id)],
                args=[
                    job,
                    claim,
                    settled,
                    reach,
                    now_ms / 1000,
                    records.encode_outcome(lost),
                    self.retention_s,
                ],
            ):
                return Claim.HELD, reach
            # Another run settled or took it first: ask again.

    async def release(self, campaign_id: str, job: int, owner: str) -> bool:
        """Give the claim back: nothing was sent (a transient error), another worker may take it now.

        Patient like `settle`: a claim left behind by a Redis blip would go stale and be held
        `unknown`, although nothing was sent.
        """
        async for attempt in _riding_out_redis_blips():
            with attempt:
                released = await self._release(keys=[keys.claims(campaign_id)], args=[job, owner])
        return bool(released)

    async def settle(
        self,
        campaign_id: str,
        job: int,
        owner: str,
        start: int,
        outcome: ChunkOutcome,
        *,
        callbacks: bool = False,
    ) -> bool:
        """Record the outcome of our claimed recipients from `start`; False if the claim was lost.

        The counters move by `outcome.counts()` in the same script that stores the outcome, which also
        writes the header of the request's delivery string when Kaleyra accepted it (with its nodes: the
        outcome's message ids; `callbacks`: their final reports are told to the campaign's callback url)
        and indexes the request for the status query.
        """
        counts = outcome.counts()
        pairs = [item for name, amount in counts.items() if amount for item in (name, amount)]
        record = records.encode_outcome(outcome)
        now = time.time()
        request = delivery.request_ids([outcome.first_message_id()])
        header = b""
        if request:
            ids = outcome.message_id_ends if outcome.id_prefix else outcome.message_ids
            # Ids in reply order when the reply could not be matched to the chunk: the last is not the
            # furthest node then, so all are read (rare); else only the last, on this hot path.
            last = (
                delivery.last_position(ids, prefix=outcome.id_prefix)
                if outcome.attributed
                else max((delivery.last_position([i], prefix=outcome.id_prefix) for i in ids if i), default=0)
            )
            nodes = counts[Outcome.SUBMITTED.value]  # the ids not dropped, counted once for both
            header = delivery.encode_header(
                delivery.Header(delivery.CAMPAIGN, int(now), campaign_id, job, start, nodes, last, callbacks)
            )
        # After a POST, losing the settlement to a Redis blip would leave the outcome unknown.
        async for attempt in _riding_out_redis_blips():
            with attempt:
                applied = await self._settle(
                    keys=[keys.campaign(campaign_id), keys.progress(campaign_id), keys.claims(campaign_id),
                          keys.failures(campaign_id), keys.outcomes(campaign_id),
                          keys.delivery(request[0] if request else ""), keys.UNREPORTED,
                          *keys.retained_keys(campaign_id)],
                    args=[job, owner, start + outcome.size, now, outcome.code, start, record,
                          self.retention_s, header, request[0] if request else "", self.poll_after_s,
                          self.pause_share, self.pause_least, _permanent_failures(outcome, counts), *pairs],
                )  # fmt: skip
        if applied == _PAUSED_ITSELF:
            structlog.get_logger("redis_model.ledger").warning(
                "campaign.paused_itself", campaign_id=campaign_id, code=outcome.code,
                reason=f"more than {self.pause_share:.0%} of the recipients attempted failed",
            )  # fmt: skip
        return bool(applied)


_PAUSED_ITSELF = 2  # what `settle` answers when the chunk's failures paused its campaign
_WORKER_CODES = "WORKER_"  # the codes of what the worker, not the gateway, could not do


def _permanent_failures(outcome: ChunkOutcome, counts: Mapping[str, int]) -> int:
    """The chunk's recipients refused for a reason a retry would not change; not those the suppression
    list took off, nor transient errors (E403, a 429) that ran out of retries, nor a job that ran out of
    retries for a reason of the worker's own (`WORKER_...`)."""
    code = outcome.code
    if not code or code == SUPPRESSED_CODE or code.startswith(_WORKER_CODES) or transient(code):
        return 0
    return counts.get(Outcome.FAILED.value, 0)


def _riding_out_redis_blips() -> tenacity.AsyncRetrying:
    """Keep trying through a Redis restart (up to SETTLE_PATIENCE_S) before giving up."""
    return tenacity.AsyncRetrying(
        retry=tenacity.retry_if_exception_type((redis.ConnectionError, redis.TimeoutError)),
        stop=tenacity.stop_after_delay(SETTLE_PATIENCE_S),
        wait=tenacity.wait_exponential(multiplier=0.1, max=5),
        reraise=True,
    )


def _now_ms() -> int:
    return int(time.time() * 1000)
