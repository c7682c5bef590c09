"""Run one job: honour pause and cancel, send its chunks, settle each, log each accepted message."""

from __future__ import annotations

from collections.abc import Sequence

from schemas import keys
from schemas.campaign import CampaignState, Recipient
from schemas.errors import AmbiguousGatewayError, PermanentGatewayError, TransientGatewayError
from worker.context import WorkerContext
from worker.logging import mask_number
from worker.payload import PayloadBuilder, chunk_size, chunks

# Kaleyra drops nodes it finds invalid from an otherwise accepted request.
DROPPED_NODE_CODE = "E406"


class CampaignPaused(Exception):
    """The campaign is paused: the job goes back to the queue, resuming at its next chunk."""


async def send_job(ctx: WorkerContext, campaign_id: str, job_index: int, *, last_attempt: bool) -> None:
    store = ctx.store
    log = ctx.log.bind(campaign_id=campaign_id, job=job_index)
    start = await store.begin_job(campaign_id, job_index)
    if start is None:
        log.warning("job.orphaned", reason="the campaign or job is no longer in Redis")
        return
    if start.job is None:
        raise CampaignPaused(campaign_id)
    recipients = start.job.recipients
    builder = PayloadBuilder(start.spec, ctx.settings)
    state, settled = start.state, start.settled
    try:
        for chunk in chunks(recipients, chunk_size(start.spec, ctx.settings), start=settled):
            if settled > start.settled:
                state = await store.state(campaign_id)  # pause and cancel take effect within one chunk
            if state == CampaignState.CANCELLED:
                await store.settle_chunk(
                    campaign_id, job_index, len(recipients), {keys.CANCELLED: len(recipients) - settled}
                )
                log.info("job.cancelled", recipients=len(recipients) - settled)
                return
            if state == CampaignState.PAUSED:
                raise CampaignPaused(campaign_id)
            await _send_chunk(ctx, builder, campaign_id, job_index, settled, chunk, last_attempt)
            settled += len(chunk)
    except (CampaignPaused, TransientGatewayError):
        raise
    except Exception as e:
        if not last_attempt:
            raise
        # Out of retries for a reason other than the gateway: say so rather than leave them pending.
        code = f"WORKER_{type(e).__name__}"
        await store.settle_chunk(
            campaign_id, job_index, len(recipients), {keys.FAILED: len(recipients) - settled}, code
        )
        log.exception(
            "sms.failed", code=code, recipients=len(recipients) - settled, reason="job out of retries"
        )


async def _send_chunk(
    ctx: WorkerContext,
    builder: PayloadBuilder,
    campaign_id: str,
    job_index: int,
    offset: int,
    chunk: Sequence[Recipient],
    last_attempt: bool,
) -> None:
    """Send `chunk`, the job's recipients from `offset` on, and settle it."""
    store = ctx.store
    settled = offset + len(chunk)
    log = ctx.log.bind(campaign_id=campaign_id, job=job_index, offset=offset)

    async def on_retry(error: TransientGatewayError) -> None:
        await store.count_retry(campaign_id)
        log.info("sms.retry", code=error.code)

    try:
        accepted = await ctx.gateway.send(builder.encode(chunk), on_retry=on_retry)
    except TransientGatewayError as e:
        if not last_attempt:
            raise  # dramatiq retries the job later; settled chunks are skipped then
        await store.settle_chunk(campaign_id, job_index, settled, {keys.FAILED: len(chunk)}, e.code)
        log.error("sms.failed", code=e.code, recipients=len(chunk), reason="retries exhausted")
    except PermanentGatewayError as e:
        await store.settle_chunk(campaign_id, job_index, settled, {keys.FAILED: len(chunk)}, e.code)
        log.error("sms.failed", code=e.code, recipients=len(chunk), reason=e.message)
    except AmbiguousGatewayError as e:
        # Resending could deliver twice: the outcome is recorded as unknown instead.
        await store.settle_chunk(campaign_id, job_index, settled, {keys.UNKNOWN: len(chunk)})
        log.warning("sms.unknown", code=e.code, recipients=len(chunk), reason=e.message)
    else:
        # Events before counters: once status shows a chunk settled, its message ids are in the log.
        show = (lambda n: n) if ctx.settings.log_full_numbers else mask_number
        for sms in accepted:
            log.info("sms.submitted", message_id=sms.message_id, recipient=show(sms.number))
        dropped = len(chunk) - len(accepted)
        if dropped:
            log.error(
                "sms.failed", code=DROPPED_NODE_CODE, recipients=dropped, reason="dropped by the gateway"
            )
        counts = {keys.SUBMITTED: len(accepted), keys.FAILED: dropped}
        await store.settle_chunk(
            campaign_id, job_index, settled, counts, DROPPED_NODE_CODE if dropped else ""
        )
