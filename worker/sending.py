"""Run one job: honour pause and cancel, claim each chunk, send it, log each accepted message, settle it."""

from __future__ import annotations

import asyncio
import operator
import time
import uuid
from collections.abc import Coroutine, Sequence
from typing import Any

import redis

from redis_model.ledger import Claim
from redis_model.sending_state import JobStart
from schemas.campaign import (
    SUPPRESSED_CODE,
    CampaignSpec,
    CampaignState,
    ChunkOutcome,
    Job,
    Outcome,
    Recipient,
)
from schemas.errors import (
    AccountFault,
    AmbiguousGatewayError,
    GatewayUnreachable,
    PermanentGatewayError,
    TransientGatewayError,
)
from schemas.kaleyra import SubmittedSms
from schemas.window import UNPLACED, seconds_until_open
from worker.context import WorkerContext
from worker.logging import flush_events, log_submitted
from worker.payload import PayloadBuilder, chunk_at, chunk_size

# Kaleyra drops nodes it finds invalid from an otherwise accepted request.
DROPPED_NODE_CODE = "E406"
# The gateway asking us to slow down (E403, or a 429 whatever its code): the account's pace is cut (AIMD).
HTTP_TOO_MANY_REQUESTS = 429
# A bulk job that has slept this long on the rate limit hands its thread over.
MAKE_WAY_AFTER_S = 1.0
# A held job (a scheduled campaign, quiet hours) looks again at least this often: a cancel settles it then.
HELD_RECHECK_MS = 60_000


class ComeBackLater(Exception):
    """Paused, shutting down, or another worker holds the job's chunk: requeue without spending a retry."""

    delay_ms: int | None = 2000  # before the job is looked at again


class Held(ComeBackLater):
    """A scheduled campaign before its release, or a chunk waiting for its time: look again then."""

    def __init__(self, reason: str, seconds: float) -> None:
        super().__init__(reason)
        self.delay_ms = max(1, min(int(seconds * 1000), HELD_RECHECK_MS))


class MakeWay(ComeBackLater):
    """A bulk job hands its thread over (to an OTP, say) and goes to the back of its queue: an urgent
    job waits for a thread, or the bulk job has waited on the rate limit a while."""

    delay_ms = None


class UnsettledChunk(ComeBackLater):
    """A chunk went out but Redis would not record its outcome: never failed, its claim goes stale."""


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
    log = ctx.log.bind(campaign_id=campaign_id, job=job_index)
    start = await _begin(ctx, log, campaign_id, job_index)
    if start is None:
        log.warning("job.orphaned", reason="the campaign or job is no longer in Redis")
        return
    if start.held_until is not None:
        raise Held("scheduled: held until its release", start.held_until - time.time())
    if start.job is None:  # paused: not loaded, but a paused campaign expires too
        await _expire_if_due(ctx, log, campaign_id, start.spec, start.state)
        raise ComeBackLater("paused")
    recipients, spec = start.job.recipients, start.spec
    builder = PayloadBuilder(spec, ctx.settings)
    size = chunk_size(spec, ctx.settings)
    waited = 0.0  # seconds this run has slept on the account's rate limit
    # A fresh run id: two runs of one message (a redelivery while the first still runs) never share claims.
    owner = f"{ctx.identity}:{delivery}:{uuid.uuid4().hex[:8]}"
    state, settled = start.state, start.settled
    shown_open = False
    sent = 0  # chunks this run sent
    ahead = _TurnAhead()
    try:
        while settled < len(recipients):
            state = await _expire_if_due(ctx, log, campaign_id, spec, state)
            if state == CampaignState.PAUSED:
                raise ComeBackLater("paused")
            if ctx.stopping:
                raise ComeBackLater("this worker is shutting down")
            opted_out = False
            if state == CampaignState.CANCELLED:  # settles the whole rest at once
                chunk = chunk_at(recipients, settled, len(recipients))
            else:
                if (wait := builder.schedule(time.time())) > 0:
                    raise Held("too close to its scheduled time to give Kaleyra one: waits for it", wait)
                if spec.send_window is not None:
                    # A chunk given Kaleyra's `time` is delivered then: the window must be open then.
                    await _keep_window(
                        ctx, campaign_id, start.job, spec.send_window, len(recipients) - settled, builder.due
                    )
                    if not shown_open:  # a job that waited before is no longer shown waiting
                        await ctx.store.clear_waiting(campaign_id, job_index)
                        shown_open = True
                if not urgent and (reason := _make_way(ctx, waited, sent)):
                    raise MakeWay(reason)
                # The account's turn before the claim (a claim never waits on the rate limit); under a
                # limit the chunk is what was booked, a small share of a second's budget.
                asked = time.monotonic()
                chunk = chunk_at(recipients, settled, size)
                booked, listed = await ahead.take() or await _book_and_look_up(
                    ctx, chunk, urgent=urgent, marketing=builder.marketing
                )
                waited += time.monotonic() - asked
                if ctx.stopping:
                    raise ComeBackLater("this worker is shutting down")
                chunk, opted_out = _cut_at_opt_outs(chunk[:booked], listed)
            # Cancelling never resends: a stale chunk is held as unknown whatever the policy.
            cancelling = state == CampaignState.CANCELLED
            policy = "hold" if cancelling else spec.on_unknown
            verdict, progress = await ctx.ledger.claim(
                campaign_id, job_index, owner, settled, len(chunk), policy, while_running=not cancelling
            )
            if verdict is Claim.PAUSED:
                raise ComeBackLater("paused")
            if verdict is Claim.CANCELLED:
                state = CampaignState.CANCELLED  # the next turn settles the rest as cancelled
                continue
            if verdict is Claim.BUSY:
                raise ComeBackLater("another worker holds this job's chunk")
            if verdict is Claim.SETTLED and progress == settled:
                log.warning("job.orphaned", reason="the campaign is no longer in Redis")
                return
            if verdict is not Claim.CLAIMED:
                if verdict is Claim.HELD:
                    log.warning(
                        "sms.unknown",
                        offset=settled,
                        recipients=progress - settled,
                        reason="its sender vanished",
                    )
                settled = progress
                continue
            if opted_out:
                failed = ChunkOutcome(outcome=Outcome.FAILED, size=len(chunk), code=SUPPRESSED_CODE)
                await ctx.ledger.settle(campaign_id, job_index, owner, settled, failed)
                log.warning("sms.failed", offset=settled, code=SUPPRESSED_CODE, recipients=len(chunk),
                            reason="on the suppression list since the campaign was published")  # fmt: skip
                settled += len(chunk)
                continue
            if state == CampaignState.CANCELLED:
                if spec.send_window is not None:
                    await ctx.store.clear_waiting(campaign_id, job_index)
                await ctx.ledger.settle(
                    campaign_id,
                    job_index,
                    owner,
                    settled,
                    ChunkOutcome(outcome=Outcome.CANCELLED, size=len(chunk)),
                )
                log.info("job.cancelled", recipients=len(chunk))
                return
            # Under a limit a turn is a slot in time, used at once: booked ahead, a stalled POST would
            # leave it to go late, together with other jobs' (a burst). A turn that would be dropped
            # (shutting down, making way) is not asked.
            following = chunk_at(recipients, settled + len(chunk), size)
            making_way = not urgent and waited > MAKE_WAY_AFTER_S
            if following and not (ctx.rate_limit.limited or ctx.stopping or making_way):
                ahead.ask(_book_and_look_up(ctx, following, urgent=urgent, marketing=builder.marketing))
            await _send_chunk(
                ctx, builder, campaign_id, job_index, owner, settled, chunk, policy, last_attempt, urgent
            )
            settled += len(chunk)
            sent += 1
    except (ComeBackLater, TransientGatewayError):
        raise
    except Exception as e:
        if not last_attempt:
            raise
        await _fail_the_rest(ctx, campaign_id, job_index, owner, settled, len(recipients), e)
    finally:
        flush_events()
        await ahead.drop()


async def _begin(ctx: WorkerContext, log: Any, campaign_id: str, job_index: int) -> JobStart | None:
    """`begin_job`, or `Held` while the account is. The worker whose turn it is probes the gateway
    first, and begins the job as usual if the hold could be lifted."""
    start = await ctx.store.begin_job(campaign_id, job_index)
    if start is not None and start.held_reason is not None and start.probe:
        fault = await ctx.gateway.probe()
        if fault is None:
            await ctx.store.lift_hold()
            log.warning("account.resumed", held_for=start.held_reason)
            start = await ctx.store.begin_job(campaign_id, job_index)
        else:
            await ctx.store.hold_account(campaign_id, fault)  # the fault now standing is the reason shown
            log.warning("account.still_held", code=fault.code, reason=fault.message)
    if start is not None and start.held_reason is not None:
        raise Held(f"the account is held: {start.held_reason}", ctx.settings.hold_probe_ms / 1000)
    return start


def _make_way(ctx: WorkerContext, waited: float, sent: int) -> str | None:
    """Why a bulk job should hand its thread over now and go to the back of its queue, if it
    should: it waited on the rate limit a while (an urgent job may need the thread), or, once this
    run has sent a chunk (so that every run moves its job on), an urgent job waits for a thread of
    this process and no other bulk job has handed one over to it."""
    if waited > MAKE_WAY_AFTER_S:
        return "waited on the rate limit; urgent jobs may be waiting for a thread"
    if sent and ctx.urgent.hand_over():
        return "an OTP or TXN job waits for a thread"
    return None


class _TurnAhead:
    """The next chunk's turn (its rate-limit booking and opt-out look-up), asked while this chunk's
    POST is in flight, so that the next POST waits on neither round trip. A turn not taken (the
    POST failed, the job stops) is dropped: its booking goes unused."""

    def __init__(self) -> None:
        self._task: asyncio.Task[tuple[int, list[int]]] | None = None

    def ask(self, turn: Coroutine[Any, Any, tuple[int, list[int]]]) -> None:
        assert self._task is None, "one turn ahead at a time"
        self._task = asyncio.ensure_future(turn)

    async def take(self) -> tuple[int, list[int]] | None:
        """The turn asked during the last POST (for the chunk that follows it, where the job now
        stands); None if none was asked, or asking failed (a Redis blip then is no reason to fail
        the job now: the caller asks again)."""
        task, self._task = self._task, None
        if task is None:
            return None
        try:
            return await task
        except Exception:
            return None

    async def drop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await _cancelled(task)


async def _cancelled(task: asyncio.Task[Any]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)  # retrieved: never "exception never retrieved"


async def _book_and_look_up(
    ctx: WorkerContext, chunk: Sequence[Recipient], *, urgent: bool, marketing: bool
) -> tuple[int, list[int]]:
    """The account's turn for up to the chunk's messages (a limit may grant fewer): how many were
    booked; and for marketing, the positions in the chunk of booked numbers on the suppression list
    now, in the same round trip. Before the claim: a Redis error here leaves nothing claimed."""
    if not marketing:
        return await ctx.rate_limit.wait_turn(len(chunk), urgent=urgent), []
    return await ctx.rate_limit.wait_turn_looking_up(chunk, urgent=urgent)


def _cut_at_opt_outs(chunk: Sequence[Recipient], listed: list[int]) -> tuple[Sequence[Recipient], bool]:
    """Numbers put on the suppression list since the campaign was published are not sent. The chunk
    is cut so that each outcome stays whole: (the leading run of opted-out numbers, True), else
    (the recipients before the first of them, False). `listed`: their positions, ascending, some
    perhaps past the chunk's end (it was cut to what the rate limit booked)."""
    listed = [i for i in listed if i < len(chunk)]
    if not listed:
        return chunk, False
    if listed[0] > 0:
        return chunk[: listed[0]], False
    run = 1
    while run < len(listed) and listed[run] == run:
        run += 1
    return chunk[:run], True


async def _keep_window(
    ctx: WorkerContext, campaign_id: str, job: Job, window: tuple[int, int], left: int, due: float | None
) -> None:
    """Quiet hours: outside the window in its recipients' time zones, the job waits (visibly in status).

    `due` is when Kaleyra will deliver a scheduled chunk (None: now). Closed then, the chunk waits
    until the window opens after it, and goes without a `time`.
    """
    now = time.time()
    delivered = max(now, due or now)
    wait = delivered - now + seconds_until_open(window, job.zones or UNPLACED, delivered)
    if delivered - now < wait:  # closed when it would be delivered
        await ctx.store.mark_waiting(campaign_id, job.index, now + wait, left)
        raise Held("outside its sending window", wait)


async def _expire_if_due(
    ctx: WorkerContext, log: Any, campaign_id: str, spec: CampaignSpec, state: str
) -> str:
    """Past its expiry a campaign is cancelled, paused or not: nothing is sent late. Returns the state."""
    if spec.expires_at is None or state == CampaignState.CANCELLED or time.time() <= spec.expires_at:
        return state
    if await ctx.store.expire(campaign_id):
        log.info("campaign.expired", expires_at=spec.expires_at)
    return CampaignState.CANCELLED


async def _fail_the_rest(
    ctx: WorkerContext, campaign_id: str, job_index: int, owner: str, settled: int, end: int, error: Exception
) -> None:
    """Out of retries for a reason other than the gateway: say so rather than leave them pending.

    The rest is claimed first, as any chunk is: a stale claim (its chunk may have been sent)
    is held as unknown, and a failure is recorded only for recipients nobody is sending.
    """
    code = f"WORKER_{type(error).__name__}"
    await ctx.ledger.release(campaign_id, job_index, owner)
    verdict, progress = await ctx.ledger.claim(campaign_id, job_index, owner, settled, end - settled, "hold")
    if verdict is Claim.HELD and progress < end:
        settled = progress
        verdict, progress = await ctx.ledger.claim(
            campaign_id, job_index, owner, settled, end - settled, "hold"
        )
    if verdict is not Claim.CLAIMED:
        raise error  # another run holds or settled it; only this message is dead-lettered
    failed = ChunkOutcome(outcome=Outcome.FAILED, size=end - settled, code=code)
    await ctx.ledger.settle(campaign_id, job_index, owner, settled, failed)
    ctx.log.error(
        "sms.failed", campaign_id=campaign_id, job=job_index, offset=settled, recipients=end - settled,
        code=code, reason=f"job out of retries: {type(error).__name__}",
    )  # fmt: skip


async def _send_chunk(
    ctx: WorkerContext,
    builder: PayloadBuilder,
    campaign_id: str,
    job_index: int,
    owner: str,
    offset: int,
    chunk: Sequence[Recipient],
    policy: str,
    last_attempt: bool,
    urgent: bool,
) -> None:
    """Send `chunk` (the job's recipients from `offset` on, claimed by `owner`) and settle it."""
    ledger = ctx.ledger
    log = ctx.log.bind(campaign_id=campaign_id, job=job_index, offset=offset)

    # A transient error sent nothing, so the claim is given back for the back-off and taken
    # again before the next attempt: a worker killed while it waits leaves no unknown chunk.
    async def reclaim(attempt: int) -> None:
        if attempt == 1:
            return
        await ctx.rate_limit.wait_turn_for_all(len(chunk), urgent=urgent)  # a retry is a request too
        verdict, _ = await ledger.claim(campaign_id, job_index, owner, offset, len(chunk), policy)
        if verdict is not Claim.CLAIMED:
            raise ComeBackLater("another worker took the chunk during the back-off")

    async def on_retry(error: TransientGatewayError) -> None:
        await ledger.release(campaign_id, job_index, owner)
        await ctx.store.count_retry(campaign_id, error)
        log.info("sms.retry", code=error.code)
        pushback = error.code == "E403" or error.status == HTTP_TOO_MANY_REQUESTS
        if pushback and (pace := await ctx.rate_limit.back_off()):
            log.warning("rate.lowered", code=error.code, messages_per_second=round(pace, 1))

    try:
        accepted = await ctx.gateway.send(
            builder.encode(chunk),
            flash=builder.spec.flash,
            on_retry=on_retry,
            before_attempt=reclaim,
            urgent=urgent,
        )
    except (AccountFault, GatewayUnreachable) as e:
        # Nothing was sent, and no request of the account can go: hold it, fail nobody.
        await ledger.release(campaign_id, job_index, owner)
        await ctx.store.hold_account(campaign_id, e)
        log.error("account.held", code=e.code, reason=e.message)
        raise Held(f"the account is held: {e.message}", ctx.settings.hold_probe_ms / 1000) from e
    except TransientGatewayError as e:
        if not last_attempt:
            await ledger.release(campaign_id, job_index, owner)  # nothing was sent: anyone may take it
            raise  # dramatiq retries the job later; settled chunks are skipped then
        outcome = ChunkOutcome(outcome=Outcome.FAILED, size=len(chunk), code=e.code)
        log.error("sms.failed", code=e.code, recipients=len(chunk), reason="retries exhausted")
        await ctx.store.note_error(campaign_id, e)
    except PermanentGatewayError as e:
        outcome = ChunkOutcome(outcome=Outcome.FAILED, size=len(chunk), code=e.code)
        log.error("sms.failed", code=e.code, recipients=len(chunk), reason=e.message)
        await ctx.store.note_error(campaign_id, e)
    except AmbiguousGatewayError as e:
        # Resending could deliver twice: the outcome is recorded as unknown instead.
        outcome = ChunkOutcome(outcome=Outcome.UNKNOWN, size=len(chunk), code=e.code)
        log.warning("sms.unknown", code=e.code, recipients=len(chunk), reason=e.message)
        await ctx.store.note_error(campaign_id, e)
    else:
        # Events before counters: once status shows a chunk settled, its message ids are in the log.
        log_submitted(
            accepted, lines=lines_of(chunk, accepted), full_numbers=ctx.settings.log_full_numbers,
            campaign_id=campaign_id, job=job_index, offset=offset,
        )  # fmt: skip
        dropped = len(chunk) - len(accepted)
        if dropped:
            log.error(
                "sms.failed", code=DROPPED_NODE_CODE, recipients=dropped, reason="dropped by the gateway"
            )
        message_ids, attributed = message_ids_by_recipient(chunk, accepted)
        outcome = ChunkOutcome.submitted(
            len(chunk), message_ids, code=DROPPED_NODE_CODE if dropped else "", attributed=attributed
        )
    flush_events()  # once status shows a chunk settled, its events are written
    try:
        applied = await ledger.settle(campaign_id, job_index, owner, offset, outcome)
    except redis.RedisError as e:
        # The request went out, so failing the chunk now could send it twice on a resend; the claim
        # is left to go stale, and the campaign's policy decides (`hold`: unknown).
        log.error("chunk.unsettled", recipients=len(chunk), reason=f"Redis: {type(e).__name__}")
        raise UnsettledChunk("its outcome could not be recorded") from e
    if not applied:
        log.warning("chunk.lease_lost", recipients=len(chunk), reason="another worker took the chunk over")


_LINE = operator.attrgetter("line")


def lines_of(chunk: Sequence[Recipient], accepted: Sequence[SubmittedSms]) -> list[int | None]:
    """The line of each accepted message's recipient in the campaign's file, matched as
    `message_ids_by_recipient` matches ids: by position in a full reply, else by number (None for a
    number the reply shows in a shape no recipient has)."""
    if len(accepted) == len(chunk):
        return list(map(_LINE, chunk))
    by_number = {recipient.to[1:]: recipient.line for recipient in chunk}
    return [by_number.get(sms.number.lstrip("+")) for sms in accepted]


def message_ids_by_recipient(
    chunk: Sequence[Recipient], accepted: Sequence[SubmittedSms]
) -> tuple[list[str], bool]:
    """One message id per recipient of the chunk, in order, `""` for a node the gateway dropped;
    and whether the ids could be attributed to their recipients.

    Kaleyra answers in request order and leaves dropped nodes out, so a full reply lines up
    by position; otherwise replies are matched by number. Either way exactly `len(accepted)`
    ids are non-empty, so the counts derived from them match what the gateway accepted.
    """
    if len(accepted) == len(chunk):
        return [sms.message_id for sms in accepted], True
    by_number = {sms.number.lstrip("+"): sms.message_id for sms in accepted}
    ids = [by_number.get(r.to[1:], "") for r in chunk]
    if sum(1 for i in ids if i) != len(accepted):
        # Numbers in a shape we cannot match: keep the counts right, give up on attribution.
        return [sms.message_id for sms in accepted] + [""] * (len(chunk) - len(accepted)), False
    return ids, True
