"""Callbacks to producers: POST each callback in the outbox (`redis_model.callbacks`) to its url, signed,
and retry it with back-off until its receiver answers 2xx or the attempts run out.

A sender runs on each worker process's event loop, started and stopped with its single-message consumer.
Every `EVERY_S` it puts the ends of watched campaigns that finished in the outbox, claims the due
callbacks and POSTs them, `AT_ONCE` at a time, with a session of its own (the gateway's carries the API
key). An attempt that gets no 2xx is made again `BACKOFF_S` x 2^(attempts - 1) later (at most
`BACKOFF_MAX_S`, with jitter), up to `MAX_ATTEMPTS`; then the callback is given up, counted failed in its
owner's hash. Without `CAMPAIGN_CALLBACK_SECRET` nothing is sent: callbacks wait, signed by none.

A receiver that does not answer costs the others little: at most `PER_HOST_AT_ONCE` callbacks of a pass
go to one host at a time, and once one of them fails to connect or times out, the host's others fail the
same way at once for a while (an attempt counted, as if each had waited: `worker.unreachable_hosts`).

A callback goes only to a public address, unless `CAMPAIGN_CALLBACK_PRIVATE=1`: any holder of an API key
names the URL, and the workers sit inside the operator's network (its Redis, its metadata service). The
host is checked before the POST and the connection's resolver keeps only public addresses, so that a
name that resolves differently the second time gains nothing; one refused is given up at once.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
import time
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import aiohttp
import msgspec
import redis
from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver

from redis_model.callbacks import FAILED, RETRY, SENT, AsyncCallbackOutbox, Claimed
from schemas.callback import CALLBACK_ID_HEADER, SIGNATURE_HEADER, render_body, shown_url, signature
from worker.background import BackgroundLoop
from worker.context import WorkerContext
from worker.unreachable_hosts import UnreachableHosts

EVERY_S = 1.0
CLAIMED_A_PASS = 100
AT_ONCE = 32
PER_HOST_AT_ONCE = 4
# A claim outlives the attempts of a pass: each is cut at TIMEOUT_S.
CLAIM_LEASE_S = 120.0
TIMEOUT_S = 10.0
BACKOFF_S = 5.0
BACKOFF_MAX_S = 3600.0
# About 10 hours of attempts: 5 s doubling to an hour, then hourly.
MAX_ATTEMPTS = 20
USER_AGENT = "campaign-callbacks/1"
# A receiver's reason as kept in the owner's hash.
REASON_CHARS = 200
CAMPAIGN_GONE = "its campaign is gone (purged, or past its retention)"


class SendPass(NamedTuple):
    """What one pass did."""

    campaigns: int = 0  # ends of campaigns put in the outbox
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0  # given up


class CallbackSender(BackgroundLoop):
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
        super().__init__(ctx)
        self.secret = ctx.settings.callback_secret
        self.private = ctx.settings.callback_private  # private addresses allowed
        self.every_s = every_s
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.log = ctx.log.bind(callbacks=True)
        self._outbox: AsyncCallbackOutbox | None = None
        self._session: aiohttp.ClientSession | None = None
        self.unreachable = UnreachableHosts()

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
        self.begin()

    async def stop(self) -> None:
        """Stop: a pass in progress is cancelled after a moment (what it claimed is attempted again once
        its claim's lease is over: a POST cut short may be told twice)."""
        await self.end()
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
        if gone := await self.outbox.of_campaigns_gone(claimed):
            for one in claimed:
                if one.id in gone:
                    await self.outbox.attempted(one, FAILED, reason=CAMPAIGN_GONE)
                    self.log.info("callback.dropped", callback_id=one.id, reason=CAMPAIGN_GONE)
            claimed = [one for one in claimed if one.id not in gone]
        if not claimed:
            return SendPass(campaigns)
        gate = asyncio.Semaphore(AT_ONCE)
        per_host: dict[str, asyncio.Semaphore] = {}

        async def attempt(one: Claimed) -> str:
            host = _host_of(one.callback.url)
            async with per_host.setdefault(host, asyncio.Semaphore(PER_HOST_AT_ONCE)), gate:
                return await self._attempt(one, host)

        came_to = await asyncio.gather(*map(attempt, claimed))
        return SendPass(
            campaigns, len(claimed), came_to.count(SENT), came_to.count(RETRY), came_to.count(FAILED)
        )

    async def _attempt(self, claimed: Claimed, host: str) -> str:
        """POST the callback once and record what it came to."""
        callback = claimed.callback
        attempt = callback.attempts + 1
        log = self.log.bind(callback_id=claimed.id, url=shown_url(callback.url), attempt=attempt)
        if (unreachable := self.unreachable.why(host)) is not None:  # failed just before: no wait for it
            return await self._not_answered(claimed, unreachable, log.bind(skipped=True))
        try:
            body = render_body(claimed.id, callback.events)
            refused = None if self.private else await _not_public(callback.url)
        except (msgspec.MsgspecError, ValueError) as e:  # nothing a later attempt would change
            refused = f"its events cannot be read: {type(e).__name__}"
        if refused is not None:
            await self.outbox.attempted(claimed, FAILED, reason=refused)
            log.warning("callback.failed", reason=refused, gave_up=True)
            return FAILED
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            CALLBACK_ID_HEADER: claimed.id,
            SIGNATURE_HEADER: signature(self.secret, body),
        }
        try:
            async with self._session_for_loop().post(
                callback.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            reason = _reason_of(e)
            if isinstance(e, TimeoutError | aiohttp.ClientConnectorError | aiohttp.ServerTimeoutError):
                self.unreachable.failed(host, reason)
        else:
            self.unreachable.answered(host)
            if 200 <= status < 300:
                await self.outbox.attempted(claimed, SENT)
                log.info("callback.sent", status=status)
                return SENT
            reason = f"HTTP {status}"
        return await self._not_answered(claimed, reason, log)

    async def _not_answered(self, claimed: Claimed, reason: str, log: Any) -> str:
        """Record an attempt that got no 2xx: again after its back-off, or given up after the last."""
        attempt = claimed.callback.attempts + 1
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
            resolver = None if self.private else _PublicOnly()
            connector = aiohttp.TCPConnector(limit=AT_ONCE, resolver=resolver)
            self._session = aiohttp.ClientSession(timeout=timeout, connector=connector)
        return self._session


def _host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _reason_of(error: Exception) -> str:
    """An attempt's failure as the owner's hash keeps it (and status shows it): its kind only, since the
    client's words (an address, an errno) would tell a producer about the network the workers sit in."""
    if isinstance(error, TimeoutError | aiohttp.ServerTimeoutError):
        return "timed out"
    if isinstance(error, aiohttp.ClientConnectorError):
        return "could not connect"
    return type(error).__name__


def _public(address: str) -> bool:
    return ipaddress.ip_address(address.split("%", 1)[0]).is_global


async def _not_public(url: str) -> str | None:
    """Why a callback may not go to `url`'s host (an address that is not public: loopback, private,
    link-local, reserved); None when it may, or when its name does not resolve (the POST then says so)."""
    host = urlsplit(url).hostname or ""
    try:
        addresses = [ipaddress.ip_address(host).compressed]
    except ValueError:
        try:
            found = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError:
            return None
        addresses = [str(info[4][0]) for info in found]
    if addresses and not any(_public(address) for address in addresses):
        return f"refused: {host} is not a public address (CAMPAIGN_CALLBACK_PRIVATE=1 allows it)"
    return None


class _PublicOnly(ThreadedResolver):
    """The connection's resolver: only a name's public addresses (the check before the POST resolved it
    once; a name may answer otherwise the second time)."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        public = [found for found in await super().resolve(host, port, family) if _public(found["host"])]
        if not public:
            raise OSError(f"{host} has no public address")
        return public
