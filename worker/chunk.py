"""Send one claimed chunk: POST it, log each message Kaleyra accepted, settle its outcome in the ledger."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from redis_model.ledger import Claim
from schemas.campaign import ChunkOutcome, Outcome, Recipient
from schemas.errors import (
    AccountFault,
    AmbiguousGatewayError,
    GatewayError,
    GatewayUnreachable,
    PermanentGatewayError,
    TransientGatewayError,
)
from schemas.kaleyra import SubmittedSms
from worker.attribution import lines_of, message_ids_by_recipient
from worker.job_run import JobRun
from worker.logging import flush_events, log_submitted
from worker.rate_limit import AccountRateLimit
from worker.stops import ComeBackLater, Held, UnsettledChunk

# Kaleyra drops nodes it finds invalid from an otherwise accepted request.
DROPPED_NODE_CODE = "E406"
# The gateway asking us to slow down (E403, or a 429 whatever its code): the account's pace is cut (AIMD).
HTTP_TOO_MANY_REQUESTS = 429


async def send_chunk(run: JobRun, chunk: Sequence[Recipient]) -> None:
    """Send `chunk` (the job's recipients from `run.settled` on, claimed by the run) and settle it."""
    log = run.ctx.log.bind(campaign_id=run.campaign_id, job=run.job_index, offset=run.settled)
    outcome = await _send(run, chunk, log)
    flush_events()  # once status shows a chunk settled, its events are written
    await _settle(run, chunk, outcome, log)


async def _send(run: JobRun, chunk: Sequence[Recipient], log: Any) -> ChunkOutcome:
    """POST the chunk (the gateway client retries transient errors) and tell its outcome."""
    attempts = _Attempts(run, len(chunk), log)
    try:
        accepted = await run.ctx.gateway.send(
            run.builder.encode(chunk),
            flash=run.spec.flash,
            on_retry=attempts.on_retry,
            before_attempt=attempts.before,
            urgent=run.urgent,
        )
    except (AccountFault, GatewayUnreachable) as e:
        # Nothing was sent, and no request of the account can go: hold it, fail nobody.
        await run.ctx.ledger.release(run.campaign_id, run.job_index, run.owner)
        await run.ctx.store.hold_account(run.campaign_id, e)
        log.error("account.held", code=e.code, reason=e.message)
        raise Held(f"the account is held: {e.message}", run.ctx.settings.hold_probe_ms / 1000) from e
    except TransientGatewayError as e:
        if not run.last_attempt:
            await run.ctx.ledger.release(run.campaign_id, run.job_index, run.owner)  # anyone may take it
            raise  # dramatiq retries the job later; settled chunks are skipped then
        return await _refused(run, len(chunk), e, log, Outcome.FAILED, "retries exhausted")
    except PermanentGatewayError as e:
        return await _refused(run, len(chunk), e, log, Outcome.FAILED, e.message)
    except AmbiguousGatewayError as e:
        # Resending could deliver twice: the outcome is recorded as unknown instead.
        return await _refused(run, len(chunk), e, log, Outcome.UNKNOWN, e.message)
    return _log_accepted(run, chunk, accepted, log)


class _Attempts:
    """The chunk's claim through the gateway client's retries. A transient error sent nothing, so the
    claim is given back for the back-off and taken again before the next attempt: a worker killed
    while it waits leaves no unknown chunk."""

    def __init__(self, run: JobRun, size: int, log: Any) -> None:
        self.run, self.size, self.log = run, size, log

    async def before(self, attempt: int) -> None:
        if attempt == 1:
            return
        run = self.run
        await run.ctx.rate_limit.wait_turn_for_all(self.size, urgent=run.urgent)  # a retry is a request too
        verdict, _ = await run.ctx.ledger.claim(
            run.campaign_id, run.job_index, run.owner, run.settled, self.size, run.spec.on_unknown
        )
        if verdict is not Claim.CLAIMED:
            await run.ctx.rate_limit.give_back(self.size)
            raise ComeBackLater("another worker took the chunk during the back-off")

    async def on_retry(self, error: TransientGatewayError) -> None:
        run = self.run
        await run.ctx.ledger.release(run.campaign_id, run.job_index, run.owner)
        await run.ctx.rate_limit.give_back(self.size)  # nothing was sent: not the daily cap's
        await run.ctx.store.count_retry(run.campaign_id, error)
        self.log.info("sms.retry", code=error.code)
        await slow_down_if_pushed_back(run.ctx.rate_limit, error, self.log)


async def slow_down_if_pushed_back(
    rate_limit: AccountRateLimit, error: TransientGatewayError, log: Any
) -> None:
    """The gateway asking us to slow down (E403, or a 429 whatever its code) cuts the account's pace."""
    pushback = error.code == "E403" or error.status == HTTP_TOO_MANY_REQUESTS
    if pushback and (pace := await rate_limit.back_off()):
        log.warning("rate.lowered", code=error.code, messages_per_second=round(pace, 1))


async def _refused(
    run: JobRun, size: int, error: GatewayError, log: Any, outcome: Outcome, reason: str
) -> ChunkOutcome:
    """The outcome of a chunk the gateway did not accept (failed, or unknown), logged and shown as the
    campaign's last error."""
    if outcome is Outcome.UNKNOWN:
        log.warning("sms.unknown", code=error.code, recipients=size, reason=reason)
    else:
        log.error("sms.failed", code=error.code, recipients=size, reason=reason)
    try:
        await run.ctx.store.note_error(run.campaign_id, error)
    except redis.RedisError as e:  # status's last error only: the settlement (it rides Redis out) counts
        log.warning("chunk.error_not_noted", reason=f"Redis: {type(e).__name__}")
    return ChunkOutcome(outcome=outcome, size=size, code=error.code)


def _log_accepted(
    run: JobRun, chunk: Sequence[Recipient], accepted: Sequence[SubmittedSms], log: Any
) -> ChunkOutcome:
    """One event per accepted message, and the chunk's outcome with each recipient's message id."""
    # Events before counters: once status shows a chunk settled, its message ids are in the log.
    log_submitted(
        accepted, lines=lines_of(chunk, accepted), full_numbers=run.ctx.settings.log_full_numbers,
        campaign_id=run.campaign_id, job=run.job_index, offset=run.settled,
    )  # fmt: skip
    dropped = len(chunk) - len(accepted)
    if dropped:
        log.error("sms.failed", code=DROPPED_NODE_CODE, recipients=dropped, reason="dropped by the gateway")
    message_ids, attributed = message_ids_by_recipient(chunk, accepted)
    return ChunkOutcome.submitted(
        len(chunk), message_ids, code=DROPPED_NODE_CODE if dropped else "", attributed=attributed
    )


async def _settle(run: JobRun, chunk: Sequence[Recipient], outcome: ChunkOutcome, log: Any) -> None:
    """Record the chunk's outcome; a lost claim is only logged (another worker took the chunk over)."""
    try:
        told = run.spec.callback_url is not None  # its final delivery reports are told to the producer
        applied = await run.ctx.ledger.settle(
            run.campaign_id, run.job_index, run.owner, run.settled, outcome, callbacks=told
        )
    except redis.RedisError as e:
        # The request went out, so failing the chunk now could send it twice on a resend; the claim
        # is left to go stale, and the campaign's policy decides (`hold`: unknown).
        log.error("chunk.unsettled", recipients=len(chunk), reason=f"Redis: {type(e).__name__}")
        raise UnsettledChunk("its outcome could not be recorded") from e
    if not applied:
        log.warning("chunk.lease_lost", recipients=len(chunk), reason="another worker took the chunk over")
