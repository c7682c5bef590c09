"""Whether a job may send now: its account not held, its campaign not expired, its time and window
come, its thread not owed to an urgent job."""

from __future__ import annotations

import time
from typing import Any

from redis_model.sending_state import JobStart
from schemas.campaign import CampaignSpec, CampaignState
from schemas.window import UNPLACED, seconds_until_open
from worker.context import WorkerContext
from worker.job_run import JobRun
from worker.stops import Held, MakeWay

# A bulk job that has slept this long on the rate limit hands its thread over.
MAKE_WAY_AFTER_S = 1.0


async def begin(ctx: WorkerContext, log: Any, campaign_id: str, job_index: int) -> JobStart | None:
    """`begin_job`, or `Held` while the account is. The worker whose turn it is probes the gateway
    first, and begins the job as usual if the hold could be lifted."""
    start = await ctx.store.begin_job(campaign_id, job_index)
    probing = start.held_reason if start is not None and start.probe else None
    if probing is not None and await _probe(ctx, log, probing, campaign_id):
        start = await ctx.store.begin_job(campaign_id, job_index)
    if start is not None and start.held_reason is not None:
        raise Held(f"the account is held: {start.held_reason}", ctx.settings.hold_probe_ms / 1000)
    return start


async def account_open(ctx: WorkerContext, log: Any) -> bool:
    """Whether the account may send now, for senders without a campaign (single messages); during a
    hold, the worker whose turn it is probes the gateway and lifts the hold if it can."""
    reason, probe = await ctx.store.account_hold()
    if reason is not None and probe:
        return await _probe(ctx, log, reason, None)
    return reason is None


async def _probe(ctx: WorkerContext, log: Any, held_reason: str, campaign_id: str | None) -> bool:
    """Ask the gateway whether the held account can send again: lift the hold if so (True), else
    hold it for the fault now standing, the reason shown from then on."""
    fault = await ctx.gateway.probe()
    if fault is None:
        await ctx.store.lift_hold()
        log.warning("account.resumed", held_for=held_reason)
        return True
    await ctx.store.hold_account(campaign_id, fault)
    log.warning("account.still_held", code=fault.code, reason=fault.message)
    return False


async def expire_if_due(
    ctx: WorkerContext, log: Any, campaign_id: str, spec: CampaignSpec, state: str
) -> str:
    """Past its expiry a campaign is cancelled, paused or not: nothing is sent late. Returns the state."""
    if spec.expires_at is None or state == CampaignState.CANCELLED or time.time() <= spec.expires_at:
        return state
    if await ctx.store.expire(campaign_id):
        log.info("campaign.expired", expires_at=spec.expires_at)
    return CampaignState.CANCELLED


async def keep_to_time(run: JobRun) -> None:
    """`Held` until the next chunk may go: a scheduled one close enough to its time to give Kaleyra
    one, and under a sending window one that Kaleyra will deliver while the window is open."""
    if (wait := run.builder.schedule(time.time())) > 0:
        raise Held("too close to its scheduled time to give Kaleyra one: waits for it", wait)
    if run.spec.send_window is not None:
        await _keep_window(run, run.spec.send_window, run.builder.due)
        if not run.shown_open:  # a job that waited before is no longer shown waiting
            await run.ctx.store.clear_waiting(run.campaign_id, run.job_index)
            run.shown_open = True


async def _keep_window(run: JobRun, window: tuple[int, int], due: float | None) -> None:
    """Quiet hours: outside the window in its recipients' time zones, the job waits (visibly in status).

    `due` is when Kaleyra will deliver a scheduled chunk (None: now). Closed then, the chunk waits
    until the window opens after it, and goes without a `time`.
    """
    now = time.time()
    delivered = max(now, due or now)
    wait = delivered - now + seconds_until_open(window, run.job.zones or UNPLACED, delivered)
    if delivered - now < wait:  # closed when it would be delivered
        left = len(run.recipients) - run.settled
        await run.ctx.store.mark_waiting(run.campaign_id, run.job.index, now + wait, left)
        raise Held("outside its sending window", wait)


def make_way(run: JobRun) -> None:
    """`MakeWay` if a bulk job should hand its thread over now and go to the back of its queue: it
    waited on the rate limit a while (an urgent job may need the thread), or, once this run has sent
    a chunk (so that every run moves its job on), an urgent job waits for a thread of this process
    and no other bulk job has handed one over to it."""
    if will_make_way(run):
        raise MakeWay("waited on the rate limit; urgent jobs may be waiting for a thread")
    if not run.urgent and run.sent and run.ctx.urgent.hand_over():
        raise MakeWay("an OTP or TXN job waits for a thread")


def will_make_way(run: JobRun) -> bool:
    """Whether the run makes way before its next chunk whatever happens (a turn booked for it goes unused):
    a bulk run that waited on the rate limit a while."""
    return not run.urgent and run.waited > MAKE_WAY_AFTER_S
