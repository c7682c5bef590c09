"""Run one job: honour pause and cancel, send its chunks, settle each, log each accepted message."""

from __future__ import annotations

from collections.abc import Sequence

from schemas import keys
from schemas.campaign import CampaignState, Recipient
from schemas.errors import AmbiguousGatewayError, PermanentGatewayError, TransientGatewayError
from worker.context import WorkerContext
from worker.logging import mask_number
from worker.payload import PayloadBuilder, chunk_size, chunked

# Kaleyra drops nodes it finds invalid from an otherwise accepted request.
DROPPED_NODE_CODE = "E406"


class CampaignPaused(Exception):
    """The campaign is paused: the job goes back to the queue, resuming at its next chunk."""


async def send_job(ctx: WorkerContext, campaign_id: str, job_index: int, *, last_attempt: bool) -> None:
    store = ctx.store
    start = await store.begin_job(campaign_id, job_index)
    log = ctx.log.bind(campaign_id=campaign_id, job=job_index)
    if start is None:
        log.warning("job.orphaned", reason="the campaign or job is no longer in Redis")
        return
    builder = PayloadBuilder(start.spec, ctx.settings)
    chunks = chunked(start.job.recipients, chunk_size(start.spec, ctx.settings))
    state = start.state
    for index in range(start.settled_chunks, len(chunks)):
        if index > start.settled_chunks:
            state = await store.state(campaign_id)  # pause and cancel take effect within one chunk
        if state == CampaignState.CANCELLED:
            left = sum(len(chunk) for chunk in chunks[index:])
            await store.settle_chunk(campaign_id, job_index, len(chunks), {keys.CANCELLED: left})
            log.info("job.cancelled", recipients=left)
            return
        if state == CampaignState.PAUSED:
            raise CampaignPaused(campaign_id)
        await _send_chunk(ctx, builder, campaign_id, job_index, index, chunks[index], last_attempt)


async def _send_chunk(
    ctx: WorkerContext,
    builder: PayloadBuilder,
    campaign_id: str,
    job_index: int,
    index: int,
    chunk: Sequence[Recipient],
    last_attempt: bool,
) -> None:
    store = ctx.store
    log = ctx.log.bind(campaign_id=campaign_id, job=job_index, chunk=index)

    async def on_retry(error: TransientGatewayError) -> None:
        await store.count_retry(campaign_id)
        log.info("sms.retry", code=error.code)

    try:
        accepted = await ctx.gateway.send(builder.encode(chunk), on_retry=on_retry)
    except TransientGatewayError as e:
        if not last_attempt:
            raise  # dramatiq retries the job later; settled chunks are skipped then
        await store.settle_chunk(campaign_id, job_index, index + 1, {keys.FAILED: len(chunk)}, e.code)
        log.error("sms.failed", code=e.code, recipients=len(chunk), reason="retries exhausted")
    except PermanentGatewayError as e:
        await store.settle_chunk(campaign_id, job_index, index + 1, {keys.FAILED: len(chunk)}, e.code)
        log.error("sms.failed", code=e.code, recipients=len(chunk), reason=e.message)
    except AmbiguousGatewayError as e:
        # Resending could deliver twice: the outcome is recorded as unknown instead.
        await store.settle_chunk(campaign_id, job_index, index + 1, {keys.UNKNOWN: len(chunk)})
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
            campaign_id, job_index, index + 1, counts, DROPPED_NODE_CODE if dropped else ""
        )
