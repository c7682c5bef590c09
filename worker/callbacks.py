"""Callbacks to producers: POST each callback in the outbox (`redis_model.callbacks`) to its url, signed,
and retry it with back-off until its receiver answers 2xx or the attempts run out.

A sender runs on each worker process's event loop, started and stopped with its single-message consumer.
Every `EVERY_S` it puts the ends of watched campaigns that finished in the outbox, claims the due
callbacks and POSTs them, `AT_ONCE` at a time, with a session of its own (the gateway's carries the API
key). An attempt that gets no 2xx is made again `BACKOFF_S` x 2^(attempts - 1) later (at most
`BACKOFF_MAX_S`, with jitter), up to `MAX_ATTEMPTS`; then the callback is given up, counted failed in its
owner's hash. Without `CAMPAIGN_CALLBACK_SECRET` nothing is sent: callbacks wait, signed by none.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import NamedTuple

import aiohttp
import redis

from redis_model.callbacks import FAILED, RETRY, SENT, AsyncCallbackOutbox, Claimed
from schemas.callback import CALLBACK_ID_HEADER, SIGNATURE_HEADER, render_body, shown_url, signature
from worker.context import WorkerContext

EVERY_S = 1.0
CLAIMED_A_PASS = 100
AT_ONCE = 32
# A claim outlives the attempts of a pass: each is cut at TIMEOUT_S.
CLAIM_LEASE_S = 120.0
TIMEOUT_S = 10.0
BACKOFF_S = 5.0
BACKOFF_MAX_S = 3600.0
# About 16 hours of attempts: 5 s doubling to an hour, then hourly.
MAX_ATTEMPTS = 20
USER_AGENT = "campaign-callbacks/1"
# A receiver's reason as kept in the owner's hash.
REASON_CHARS = 200


class SendPass(NamedTuple):
    """What one pass did."""

    campaigns: int = 0  # ends of campaigns put in the outbox
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0  # given up


class CallbackSender:
    """Runs on the worker's event loop from `start()` until `stop()`; does nothing without a secret. Any
    number of senders may run at once: a callback is claimed by one at a time."""

    def __init__(
        self,
        ctx: WorkerContext,
        *,
        every_s: float = EVERY_S,
        max_attempts: int = MAX_ATTEMPTS,
        backoff_s: float = BACKOFF_S,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self.ctx = ctx
        self.secret = ctx.settings.callback_secret
        self.every_s = every_s
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.log = ctx.log.bind(callbacks=True)
        self._outbox: AsyncCallbackOutbox | None = None
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping: asyncio.Event | None = None

    @property
    def outbox(self) -> AsyncCallbackOutbox:
        if self._outbox is None:
            self._outbox = AsyncCallbackOutbox(self.ctx.store.client)
        return self._outbox

    def start(self) -> None:
        """Start sending (call on the event loop); without a secret, say once why nothing is sent."""
        if not self.secret:
            self.log.info(
                "callbacks.off", reason="CAMPAIGN_CALLBACK_SECRET is not set: callbacks wait unsent"
            )
            return
        self._stopping = asyncio.Event()
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Stop: a pass in progress is cancelled after a moment (what it claimed is attempted again once
        its claim's lease is over: a POST cut short may be told twice)."""
        if self._stopping is not None:
            self._stopping.set()
        if self._task is not None:
            _done, late = await asyncio.wait([self._task], timeout=2.0)
            for task in late:
                task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        while not self._stopped:
            try:
                done = await self.send_once()
            except redis.RedisError as e:
                self.log.error("callbacks.pass_failed", reason=f"Redis: {type(e).__name__}")
                done = SendPass()
            except Exception as e:
                self.log.exception("callbacks.pass_failed", reason=type(e).__name__)
                done = SendPass()
            if done.claimed < CLAIMED_A_PASS:
                await self._pause(self.every_s)  # a full pass goes on at once: there may be more due

    async def send_once(self, *, now: float | None = None) -> SendPass:
        """One pass: the ends of finished campaigns into the outbox, then every due callback attempted."""
        now = time.time() if now is None else now
        campaigns = await self.outbox.tell_finished_campaigns(now=now)
        claimed = await self.outbox.claim_due(now, CLAIMED_A_PASS, lease_s=CLAIM_LEASE_S)
        if not claimed:
            return SendPass(campaigns)
        gate = asyncio.Semaphore(AT_ONCE)

        async def attempt(one: Claimed) -> str:
            async with gate:
                return await self._attempt(one)

        came_to = await asyncio.gather(*map(attempt, claimed))
        return SendPass(
            campaigns, len(claimed), came_to.count(SENT), came_to.count(RETRY), came_to.count(FAILED)
        )

    async def _attempt(self, claimed: Claimed) -> str:
        """POST the callback once and record what it came to."""
        callback = claimed.callback
        body = render_body(callback.events)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            CALLBACK_ID_HEADER: claimed.id,
            SIGNATURE_HEADER: signature(self.secret, body),
        }
        attempt = callback.attempts + 1
        log = self.log.bind(callback_id=claimed.id, url=shown_url(callback.url), attempt=attempt)
        try:
            async with self._session_for_loop().post(
                callback.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            reason = _reason_of(e)
        else:
            if 200 <= status < 300:
                await self.outbox.attempted(claimed, SENT)
                log.info("callback.sent", status=status)
                return SENT
            reason = f"HTTP {status}"
        if attempt >= self.max_attempts:
            await self.outbox.attempted(claimed, FAILED, reason=reason)
            log.warning("callback.failed", reason=reason, gave_up=True)
            return FAILED
        wait = self._backoff(attempt)
        await self.outbox.attempted(claimed, RETRY, next_at=time.time() + wait, reason=reason)
        log.info("callback.retry", reason=reason, retry_in_s=round(wait, 1))
        return RETRY

    def _backoff(self, attempt: int) -> float:
        """How long after failed attempt `attempt` (from 1) the next is made: doubling, capped, with a
        fifth of jitter so that a receiver back from an outage is not met by every callback at once."""
        wait = min(self.backoff_s * 2 ** (attempt - 1), BACKOFF_MAX_S)
        return wait * random.uniform(0.8, 1.0)

    def _session_for_loop(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=self.timeout_s)
            self._session = aiohttp.ClientSession(
                timeout=timeout, connector=aiohttp.TCPConnector(limit=AT_ONCE)
            )
        return self._session

    @property
    def _stopped(self) -> bool:
        return self.ctx.stopping or (self._stopping is not None and self._stopping.is_set())

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when stopped."""
        assert self._stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


def _reason_of(error: Exception) -> str:
    """An attempt's failure as the owner's hash keeps it: its kind, and the client's words for it."""
    if isinstance(error, TimeoutError):
        return "timed out"
    return f"{type(error).__name__}: {error}"[:REASON_CHARS]
