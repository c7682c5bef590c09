"""A job's run: prepare it, then for each chunk book its turn, claim it, send it, log and settle it."""

from __future__ import annotations

import time
from collections.abc import Sequence

from redis_model.ledger import HOLD, Claim
from schemas.campaign import SUPPRESSED_CODE, CampaignState, ChunkOutcome, Outcome, Recipient
from schemas.errors import TransientGatewayError
from worker.chunk import send_chunk
from worker.context import WorkerContext
from worker.gates import begin, expire_if_due, keep_to_time, make_way, will_make_way
from worker.job_run import JobRun
from worker.logging import flush_events
from worker.stops import ComeBackLater, Held


async def send_job(
    ctx: WorkerContext,
    campaign_id: str,
    job_index: int,
    *,
    delivery: str,
    last_attempt: bool,
    urgent: bool = False,
) -> None:
    """Send what is left of the job. `delivery` names this delivery of the message in chunk claims;
    an `urgent` job (OTP, TXN) goes ahead of the bulk campaigns waiting on the account's rate limit."""
    run = await prepare(
        ctx, campaign_id, job_index, delivery=delivery, last_attempt=last_attempt, urgent=urgent
    )
    if run is None:
        return
    try:
        while not run.over:
            await next_chunk(run)
    except (ComeBackLater, TransientGatewayError):
        raise
    except Exception as e:
        if not last_attempt:
            raise
        await fail_the_rest(run, e)
    finally:
        flush_events()
        await run.turns.drop()


async def prepare(
    ctx: WorkerContext, campaign_id: str, job_index: int, *, delivery: str, last_attempt: bool, urgent: bool
) -> JobRun | None:
    """Begin the job: its run, or None if the campaign or job is gone; `Held` or `ComeBackLater`
    while it may not send (scheduled, paused, the account held)."""
    log = ctx.log.bind(campaign_id=campaign_id, job=job_index)
    start = await begin(ctx, log, campaign_id, job_index)
    if start is None:
        log.warning("job.orphaned", reason="the campaign or job is no longer in Redis")
        return None
    if start.held_until is not None:
        raise Held("scheduled: held until its release", start.held_until - time.time())
    if start.job is None:  # paused: not loaded, but a paused campaign expires too
        await expire_if_due(ctx, log, campaign_id, start.spec, start.state)
        raise ComeBackLater("paused")
    return JobRun(
        ctx, log, campaign_id, job_index, start, start.job,
        delivery=delivery, last_attempt=last_attempt, urgent=urgent,
    )  # fmt: skip


async def next_chunk(run: JobRun) -> None:
    """Book, claim, send, log and settle the job's next chunk; cancelled, settle the rest at once."""
    await _look_in(run)
    if run.cancelled:
        await _cancel_the_rest(run)
        return
    chunk, opted_out = await book(run)
    if not await claim(run, chunk):
        return
    if opted_out:
        await _settle_opted_out(run, chunk)
        return
    _book_the_following(run, chunk)
    await send_chunk(run, chunk)
    run.settled += len(chunk)
    run.sent += 1


async def _look_in(run: JobRun) -> None:
    """Between chunks: an expired campaign is cancelled; paused, or its worker stopping, the job waits."""
    run.state = await expire_if_due(run.ctx, run.log, run.campaign_id, run.spec, run.state)
    if run.state == CampaignState.PAUSED:
        raise ComeBackLater("paused")
    if run.ctx.stopping:
        raise ComeBackLater("this worker is shutting down")


async def book(run: JobRun) -> tuple[Sequence[Recipient], bool]:
    """Once the next chunk may go, the account's turn for it (before the claim: a claim never waits on
    the rate limit): the chunk cut to what was booked and at opt-outs, and whether it opted out."""
    await keep_to_time(run)
    make_way(run)
    asked = time.monotonic()
    chunk = run.chunk_from(run.settled)
    turn = await run.turns.take(run.settled, chunk)
    run.waited += time.monotonic() - asked
    if run.ctx.stopping:
        await run.ctx.rate_limit.give_back(turn.booked)
        raise ComeBackLater("this worker is shutting down")
    cut, opted_out = turn.cut(chunk)
    # What is not sent of the booking (cut at an opt-out, or the opted-out run) leaves the daily cap.
    await run.ctx.rate_limit.give_back(turn.booked if opted_out else turn.booked - len(cut))
    return cut, opted_out


async def claim(run: JobRun, chunk: Sequence[Recipient]) -> bool:
    """Claim the chunk in the ledger: True if it is the run's to send. Otherwise the run moves on as
    the verdict says (settled elsewhere, a stale chunk held, cancelled, gone) or comes back later."""
    # Cancelling never resends: a stale chunk is held as unknown whatever the policy.
    cancelling = run.cancelled
    verdict, progress = await run.ctx.ledger.claim(
        run.campaign_id, run.job_index, run.owner, run.settled, len(chunk),
        HOLD if cancelling else run.spec.on_unknown, while_running=not cancelling,
    )  # fmt: skip
    if verdict is Claim.CLAIMED:
        return True
    await run.ctx.rate_limit.give_back(len(chunk))  # booked, and not this run's to send
    if verdict is Claim.PAUSED:
        raise ComeBackLater("paused")
    if verdict is Claim.BUSY:
        raise ComeBackLater("another worker holds this job's chunk")
    if verdict is Claim.CANCELLED:
        run.state = CampaignState.CANCELLED  # the next turn settles the rest as cancelled
    elif verdict is Claim.SETTLED and progress == run.settled:
        run.log.warning("job.orphaned", reason="the campaign is no longer in Redis")
        run.stopped = True
    else:
        if verdict is Claim.HELD:
            run.log.warning("sms.unknown", offset=run.settled, recipients=progress - run.settled,
                            reason="its sender vanished")  # fmt: skip
        run.settled = progress
    return False


def _book_the_following(run: JobRun, chunk: Sequence[Recipient]) -> None:
    """While this chunk's POST is in flight, book the following chunk's turn; not if it would be
    dropped (this worker shutting down, the run making way)."""
    offset = run.settled + len(chunk)
    following = run.chunk_from(offset)
    if following and not (run.ctx.stopping or will_make_way(run)):
        run.turns.book_ahead(offset, following)


async def _settle_opted_out(run: JobRun, chunk: Sequence[Recipient]) -> None:
    failed = ChunkOutcome(outcome=Outcome.FAILED, size=len(chunk), code=SUPPRESSED_CODE)
    await run.ctx.ledger.settle(run.campaign_id, run.job_index, run.owner, run.settled, failed)
    run.log.warning("sms.failed", offset=run.settled, code=SUPPRESSED_CODE, recipients=len(chunk),
                    reason="on the suppression list since the campaign was published")  # fmt: skip
    run.settled += len(chunk)


async def _cancel_the_rest(run: JobRun) -> None:
    """Claim every recipient left and settle them cancelled; the job ends."""
    rest = run.rest()
    if not await claim(run, rest):
        return
    if run.spec.send_window is not None:
        await run.ctx.store.clear_waiting(run.campaign_id, run.job_index)
    cancelled = ChunkOutcome(outcome=Outcome.CANCELLED, size=len(rest))
    await run.ctx.ledger.settle(run.campaign_id, run.job_index, run.owner, run.settled, cancelled)
    run.log.info("job.cancelled", recipients=len(rest))
    run.stopped = True


async def fail_the_rest(run: JobRun, error: Exception) -> None:
    """Out of retries for a reason other than the gateway: say so rather than leave them pending.

    The rest is claimed first, as any chunk is: a stale claim (its chunk may have been sent)
    is held as unknown, and a failure is recorded only for recipients nobody is sending.
    """
    ledger, campaign_id, job_index, owner = run.ctx.ledger, run.campaign_id, run.job_index, run.owner
    code, settled, end = f"WORKER_{type(error).__name__}", run.settled, len(run.recipients)
    await ledger.release(campaign_id, job_index, owner)
    verdict, progress = await ledger.claim(campaign_id, job_index, owner, settled, end - settled, HOLD)
    if verdict is Claim.HELD and progress < end:
        settled = progress
        verdict, progress = await ledger.claim(campaign_id, job_index, owner, settled, end - settled, HOLD)
    if verdict is not Claim.CLAIMED:
        raise error  # another run holds or settled it; only this message is dead-lettered
    failed = ChunkOutcome(outcome=Outcome.FAILED, size=end - settled, code=code)
    await ledger.settle(campaign_id, job_index, owner, settled, failed)
    run.ctx.log.error(
        "sms.failed", campaign_id=campaign_id, job=job_index, offset=settled, recipients=end - settled,
        code=code, reason=f"job out of retries: {type(error).__name__}",
    )  # fmt: skip
