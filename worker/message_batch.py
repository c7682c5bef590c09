"""Send a batch of single messages: group them by type, book the account's turn, leave out opt-outs,
POST each group, log each accepted message and settle every one (submitted, failed or unknown)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence

import redis

from redis_model.coalescing import Coalesced
from redis_model.ledger import WORKER_LOST_CODE
from redis_model.message_lanes import MessageLanes, Settled, Taken
from schemas.campaign import MARKETING_TYPES, SUPPRESSED_CODE, MessageType, Recipient
from schemas.errors import (
    AccountFault,
    AmbiguousGatewayError,
    GatewayUnreachable,
    PermanentGatewayError,
    TransientGatewayError,
)
from schemas.kaleyra import SubmittedSms
from schemas.message import MessageStatus
from worker.attribution import message_ids_by_recipient
from worker.chunk import DROPPED_NODE_CODE, slow_down_if_pushed_back
from worker.context import WorkerContext
from worker.logging import SubmittedMessage, flush_events, log_messages_submitted
from worker.payload import encode_messages, max_nodes
from worker.stops import HELD_RECHECK_MS, DailyCapReached


class _TakenOver(Exception):
    """Another worker reclaimed part of a request's messages during a retry's back-off."""


# Requests of single messages one process has under way at once: a guard, above what the lanes' batches
# in flight make (`worker.messages`: four OTP batches of 16, a request each, and four of TXN and of
# bulk, a request or two each), since a batch's messages are marked `sending` together and one that
# waited here would end `unknown` were its worker to die, though never sent.
REQUESTS_AT_ONCE = 80
# While the daily cap holds single messages, the consumer books again this often.
CAPPED_RECHECK_S = 5.0


class BatchSender:
    """Sends batches read from the lanes by one worker process (`lanes`: its consumer)."""

    def __init__(self, ctx: WorkerContext, lanes: MessageLanes) -> None:
        self.ctx = ctx
        self.lanes = lanes
        self.log = ctx.log.bind(messages=True)
        self._places = asyncio.Semaphore(REQUESTS_AT_ONCE)
        # Requests that end in the same turn of the event loop are settled in one round trip.
        self._settle_in_turn: Coalesced[Sequence[Settled], None] = Coalesced(self._settle_all)
        # Until when (monotonic) the account's daily cap holds the lanes: nothing is read meanwhile.
        self.capped_until = 0.0
        self.cap_told_at = -math.inf  # when the log last said the cap holds the messages

    async def send(self, batch: Sequence[Taken]) -> None:
        """Send the batch: book the account's turn for as much of it as the rate limit grants, settle
        its opt-outs failed, mark the rest `sending` and POST it, a request per group, the requests at
        once (OTP: one each), up to `REQUESTS_AT_ONCE` for the process; until the batch is done, or
        the account is held (the rest is released then: nothing failed, nothing sent). The batch is
        of one lane, so its booking and its marking are one round trip each, however many requests."""
        rest = list(batch)
        try:
            await self._send(rest)
        except DailyCapReached as capped:
            # Nothing of what is left was marked (a retry's messages were released before it booked).
            await self.lanes.release(rest)
            now = time.monotonic()
            if now >= self.cap_told_at + HELD_RECHECK_MS / 1000:
                self.log.warning("messages.daily_cap", reason=str(capped), messages=len(rest))
                self.cap_told_at = now
            # Booked again soon: once the cap is raised or lifted, a message queued since goes within
            # seconds (those released here go with a reclaim pass, once idle a lease).
            self.capped_until = now + min(capped.resumes_in_s, CAPPED_RECHECK_S)

    async def _send(self, rest: list[Taken]) -> None:
        """`send`, taking the batch's messages off `rest` as their turn is booked."""
        urgent = rest[0].lane.urgent if rest else False
        while rest:
            if any(taken.message.type in MARKETING_TYPES for taken in rest):
                recipients = [Recipient(taken.message.to, 0) for taken in rest]
                booked, listed = await self.ctx.rate_limit.wait_turn_looking_up(recipients, urgent=urgent)
            else:
                booked, listed = await self.ctx.rate_limit.wait_turn(len(rest), urgent=urgent), []
            part = rest[:booked]
            del rest[:booked]
            opted_out = {p for p in listed if p < booked and part[p].message.type in MARKETING_TYPES}
            if opted_out:
                await self._settle_opted_out([part[position] for position in sorted(opted_out)])
                await self.ctx.rate_limit.give_back(len(opted_out))  # not sent: not the daily cap's
            marked = await self.lanes.mark_sending([t for p, t in enumerate(part) if p not in opted_out])
            held = asyncio.Event()
            posted = [self._post_in_turn(request, held) for request in groups_of(marked)]
            for failure in await asyncio.gather(*posted, return_exceptions=True):
                if isinstance(failure, BaseException):  # every request done first: none left running
                    raise failure
            if held.is_set():
                await self.lanes.release(rest)
                return

    async def settle_lost(self, lost: Sequence[Taken]) -> None:
        """Messages whose worker died after marking them `sending`: they may have been sent, and
        Kaleyra has no idempotency, so they end `unknown` and are never sent again."""
        for taken in lost:
            self.log.warning("sms.unknown", message=taken.id, code=WORKER_LOST_CODE,
                             reason="its sender vanished")  # fmt: skip
        await self.lanes.settle([Settled(t, MessageStatus.UNKNOWN, code=WORKER_LOST_CODE) for t in lost])

    async def _settle_opted_out(self, opted_out: Sequence[Taken]) -> None:
        for taken in opted_out:
            self.log.warning("sms.failed", message=taken.id, code=SUPPRESSED_CODE,
                             reason="on the account's suppression list")  # fmt: skip
        await self.lanes.settle([Settled(t, MessageStatus.FAILED, code=SUPPRESSED_CODE) for t in opted_out])

    async def _post_in_turn(self, request: Sequence[Taken], held: asyncio.Event) -> None:
        async with self._places:
            if held.is_set():  # another request of the batch found the account held
                await self.lanes.release(request)
            elif not await self._post(request):
                held.set()

    async def _post(self, marked: Sequence[Taken]) -> bool:
        """POST a request of messages marked `sending` and settle each; False if the account is held
        (they are released, not failed)."""
        attempts = _Attempts(self, marked)
        try:
            accepted = await self.ctx.gateway.send(
                encode_messages([taken.message for taken in marked], self.ctx.settings),
                on_retry=attempts.on_retry,
                before_attempt=attempts.before,
                urgent=marked[0].lane.urgent,
            )
        except (AccountFault, GatewayUnreachable) as e:
            # Nothing was sent, and no request of the account can go: hold it, fail nobody.
            await self.lanes.release(attempts.marked)
            await self.ctx.store.hold_account(None, e)
            self.log.error("account.held", code=e.code, reason=e.message)
            return False
        except _TakenOver:
            await self.lanes.release(attempts.marked)
            return True
        except TransientGatewayError as e:
            outcomes = await self._retry_later(attempts.marked, e)
        except PermanentGatewayError as e:
            outcomes = self._refused(marked, MessageStatus.FAILED, e.code, e.message)
        except AmbiguousGatewayError as e:
            # Resending could deliver twice: the outcome is recorded as unknown instead.
            outcomes = self._refused(marked, MessageStatus.UNKNOWN, e.code, e.message)
        else:
            outcomes = self._accepted(marked, accepted)
        flush_events()  # once a message reads settled, its event is written
        await self._settle(outcomes)
        return True

    async def _retry_later(self, request: Sequence[Taken], error: TransientGatewayError) -> list[Settled]:
        """The gateway still refused after the client's retries, and nothing was sent: the messages go
        back to be sent again by a reclaim pass; those refused `CAMPAIGN_JOB_MAX_RETRIES` times fail."""
        attempts = await self.lanes.release(request, failed_attempt=True)
        most = self.ctx.settings.job_max_retries
        spent = [taken for taken, n in zip(request, attempts, strict=True) if n > most]
        self.log.warning("messages.retry_later", code=error.code, messages=len(request) - len(spent))
        return self._refused(spent, MessageStatus.FAILED, error.code, error.message) if spent else []

    def _refused(
        self, request: Sequence[Taken], status: MessageStatus, code: str, reason: str
    ) -> list[Settled]:
        event = "sms.unknown" if status is MessageStatus.UNKNOWN else "sms.failed"
        self.log.error(event, code=code, messages=[taken.id for taken in request], reason=reason)
        return [Settled(taken, status, code=code) for taken in request]

    def _accepted(self, request: Sequence[Taken], accepted: Sequence[SubmittedSms]) -> list[Settled]:
        """Each message with the id Kaleyra gave it (an event per message), or failed if the gateway
        dropped its node."""
        recipients = [Recipient(taken.message.to, 0) for taken in request]
        message_ids, _ = message_ids_by_recipient(recipients, accepted)
        outcomes, submitted = [], []
        for taken, message_id in zip(request, message_ids, strict=True):
            if message_id:
                message = taken.message
                submitted.append(SubmittedMessage(message_id, taken.id, message.reference, message.to))
                outcomes.append(Settled(taken, MessageStatus.SUBMITTED, message_id=message_id))
            else:
                self.log.error("sms.failed", message=taken.id, code=DROPPED_NODE_CODE,
                               reason="dropped by the gateway")  # fmt: skip
                outcomes.append(Settled(taken, MessageStatus.FAILED, code=DROPPED_NODE_CODE))
        log_messages_submitted(submitted, full_numbers=self.ctx.settings.log_full_numbers)
        return outcomes

    async def _settle(self, outcomes: Sequence[Settled]) -> None:
        if not outcomes:
            return
        try:
            await self._settle_in_turn(outcomes)
        except redis.RedisError as e:
            # The request went out: the messages stay `sending`, and a reclaim pass settles them unknown.
            self.log.error("messages.unsettled", messages=len(outcomes), reason=f"Redis: {type(e).__name__}")

    async def _settle_all(self, requests: list[Sequence[Settled]]) -> list[None]:
        await self.lanes.settle([outcome for outcomes in requests for outcome in outcomes])
        return [None] * len(requests)


class _Attempts:
    """A request's messages through the gateway client's retries. A transient error sent nothing, so
    they are released for the back-off and marked again before the next attempt: a worker killed
    while it waits leaves them to be sent by another, not unknown."""

    def __init__(self, sender: BatchSender, marked: Sequence[Taken]) -> None:
        self.sender, self.marked = sender, list(marked)

    async def before(self, attempt: int) -> None:
        if attempt == 1:
            return
        sender = self.sender
        await sender.ctx.rate_limit.wait_turn_for_all(len(self.marked), urgent=self.marked[0].lane.urgent)
        again = await sender.lanes.mark_sending(self.marked)
        if len(again) < len(self.marked):
            self.marked = again
            raise _TakenOver("another worker took some of the messages during the back-off")

    async def on_retry(self, error: TransientGatewayError) -> None:
        sender = self.sender
        await sender.lanes.release(self.marked)
        await sender.ctx.rate_limit.give_back(len(self.marked))  # nothing was sent: not the daily cap's
        sender.log.info("sms.retry", code=error.code, messages=len(self.marked))
        await slow_down_if_pushed_back(sender.ctx.rate_limit, error, sender.log)


def groups_of(batch: Sequence[Taken]) -> list[list[Taken]]:
    """The batch in requests: by message type (a request has one), each at most `max_nodes` of it."""
    by_type: dict[MessageType, list[Taken]] = {}
    for taken in batch:
        by_type.setdefault(taken.message.type, []).append(taken)
    groups = []
    for message_type, group in by_type.items():
        size = max_nodes(message_type)
        groups += [group[start : start + size] for start in range(0, len(group), size)]
    return groups
