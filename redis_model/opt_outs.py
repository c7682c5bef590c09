"""Opted-out numbers join the account's suppression list: a message whose final delivery report's trace
says the recipient opted out or is on a do-not-disturb register (`schemas.delivery.OPTED_OUT_TRACES`)
has its number added to the list `campaign suppress` manages, in E.164 as the list stores it.

A campaign's message is found in the ledger: its request's delivery header names the campaign, the job
and the chunk's offset; the chunk's outcome holds its recipients' message ids in order, so the message
id's place among them is the recipient's in the chunk, and the job holds the recipient. Opt-outs are
rare: this costs two round trips when a call of the receiver has some, none otherwise. A single
message's number comes with it (its request's delivery string keeps it). A chunk whose reply could not
be matched to its recipients (`attributed` false) does not say which recipient got which id: it is not
suppressed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import redis.asyncio as aioredis
import structlog

from redis_model import keys, records
from redis_model.scripts import source
from redis_model.suppression_list import FORMAT
from schemas.campaign import Job, Outcome
from schemas.masking import mask_number


class OptOut(NamedTuple):
    """A message newly recorded with a final report whose trace is an opt-out, and whose chunk it is."""

    message_id: str
    trace: str
    campaign_id: str = ""  # a campaign's message: where it is in the ledger
    job: int = 0
    offset: int = 0
    number: str | None = None  # a single message's (E.164)


class OptOutSuppression:
    """Adds the numbers of opted-out campaign messages to one account's suppression list."""

    def __init__(self, client: aioredis.Redis, sid: str) -> None:
        self.client = client
        self.sid = sid
        self._suppress = client.register_script(source("suppress_numbers"))

    async def suppress(self, opt_outs: Sequence[OptOut]) -> int:
        """Numbers new to the list; one `dlr.suppressed` event each (the number masked)."""
        found = await self._numbers(opt_outs)
        if not found:
            return 0
        list_keys = [keys.suppression_list(self.sid), keys.suppression_format(self.sid)]
        added: Any = await self._suppress(keys=list_keys, args=[FORMAT, *found])
        log = structlog.get_logger("redis_model.opt_outs")
        for raw in added:
            number = raw.decode() if isinstance(raw, bytes) else str(raw)
            opt_out = found[number]
            log.info(
                "dlr.suppressed", number=mask_number(number), campaign_id=opt_out.campaign_id or None,
                message_id=opt_out.message_id, trace=opt_out.trace,
            )  # fmt: skip
        return len(added)

    async def _numbers(self, opt_outs: Sequence[OptOut]) -> dict[str, OptOut]:
        """Number -> its opt-out: a single message's as it came, a campaign's read from the ledger in one
        round trip (each chunk's outcome and each job once)."""
        found: dict[str, OptOut] = {o.number: o for o in opt_outs if o.number is not None}
        opt_outs = [o for o in opt_outs if o.number is None]
        if not opt_outs:
            return found
        chunks = sorted({(o.campaign_id, o.job, o.offset) for o in opt_outs})
        jobs = sorted({(campaign_id, job) for campaign_id, job, _ in chunks})
        async with self.client.pipeline(transaction=False) as pipe:
            for campaign_id, job, offset in chunks:
                pipe.hget(keys.outcomes(campaign_id), keys.outcome_field(job, offset))
            for campaign_id, job in jobs:
                pipe.hget(keys.jobs(campaign_id), str(job))
            replies = await pipe.execute()
        ids_of = {
            chunk: _ids_in_chunk(raw) for chunk, raw in zip(chunks, replies[: len(chunks)], strict=True)
        }
        job_of: Mapping[tuple[str, int], Job | None] = {
            where: records.decode_job(raw) if raw else None
            for where, raw in zip(jobs, replies[len(chunks) :], strict=True)
        }
        for opt_out in opt_outs:
            ids = ids_of[(opt_out.campaign_id, opt_out.job, opt_out.offset)]
            read = job_of[(opt_out.campaign_id, opt_out.job)]
            index = ids.get(opt_out.message_id)
            if read is None or index is None or opt_out.offset + index >= len(read.recipients):
                continue  # the campaign is gone, or its ledger does not say whose the message was
            found.setdefault(read.recipients[opt_out.offset + index].to, opt_out)
        return found


def _ids_in_chunk(raw: bytes | None) -> dict[str, int]:
    """A settled chunk's message ids -> the recipient's index in the chunk (none when it is not known)."""
    if not raw:
        return {}
    outcome = records.decode_outcome(raw)
    if outcome.outcome is not Outcome.SUBMITTED or not outcome.attributed:
        return {}
    return {message_id: index for index, message_id in enumerate(outcome.full_message_ids()) if message_id}
