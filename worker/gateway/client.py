"""POST one `/sms/json` request (or, for flash SMS, one `/sms` request), retrying short blips with tenacity.

One `aiohttp.ClientSession` per process, opened lazily on the worker's event loop
and closed at shutdown: connections are pooled across every job the process runs.

`CAMPAIGN_MAX_IN_FLIGHT` caps a process's bulk requests in flight. With more worker threads than
that, a chunk's bookkeeping (its claim, events and settlement, a few milliseconds of Redis round
trips and CPU) happens while other jobs' requests are out, and the gateway always has that many.
OTP and TXN requests (one message each) never wait for a place.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
import tenacity

from schemas.errors import (
    AccountFault,
    AmbiguousGatewayError,
    GatewayError,
    GatewayUnreachable,
    TransientGatewayError,
)
from schemas.kaleyra import QueriedStatus, SubmittedSms
from schemas.masking import redact_url
from schemas.settings import Settings
from worker.gateway.replies import parse_reply, parse_status_reply
from worker.metrics import FLASH, PROBE, SEND, STATUS, count_retry, gateway_request

# A request Kaleyra refuses after checking the key ("sms" must not be empty, E703): nothing is sent.
PROBE_PAYLOAD = b'{"sms":[]}'

OnRetry = Callable[[TransientGatewayError], Awaitable[None]]
BeforeAttempt = Callable[[int], Awaitable[None]]  # called with the attempt number, from 1


class KaleyraClient:
    def __init__(self, settings: Settings, *, max_connections: int = 64) -> None:
        self._url = settings.sms_json_url
        # As messages (stored in Redis, shown by status) name the gateway: a proxy's password hidden.
        self._shown = redact_url(settings.base_url)
        self._flash_url = settings.sms_url
        self._status_url = settings.sms_status_url
        self._headers = {"api-key": settings.api_key, "content-type": "application/json"}
        # A separate connect timeout: failing to connect sent nothing and is safe to retry.
        self._timeout = aiohttp.ClientTimeout(
            total=settings.http_timeout_s, connect=min(settings.http_timeout_s, 10)
        )
        self._max_connections = max_connections
        # A bulk request waits here for its place, outside the request's timeout: it is not sent yet.
        self._places = asyncio.Semaphore(settings.max_in_flight) if settings.max_in_flight else None
        self._attempts = settings.retry_attempts
        self._backoff_s = settings.retry_backoff_ms / 1000
        self._backoff_max_s = settings.retry_backoff_max_ms / 1000
        self._session: aiohttp.ClientSession | None = None

    async def send(
        self,
        payload: bytes,
        *,
        flash: bool = False,
        on_retry: OnRetry | None = None,
        before_attempt: BeforeAttempt | None = None,
        urgent: bool = False,
    ) -> list[SubmittedSms]:
        """POST `payload` (to `/sms` when `flash`); retry transient errors with exponential backoff
        and jitter, then re-raise.

        `before_attempt` runs before every attempt (the worker takes its chunk's claim again there).
        An `urgent` request (OTP, TXN) does not wait for a place among the bulk requests in flight.
        """

        async def before(state: tenacity.RetryCallState) -> None:
            if before_attempt is not None:
                await before_attempt(state.attempt_number)

        async def before_sleep(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, TransientGatewayError):
                count_retry(error.code)
                if on_retry is not None:
                    await on_retry(error)

        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception_type(TransientGatewayError),
            stop=tenacity.stop_after_attempt(self._attempts),
            wait=tenacity.wait_random_exponential(multiplier=self._backoff_s, max=self._backoff_max_s),
            before=before,
            before_sleep=before_sleep,
            reraise=True,
        )
        places = None if urgent else self._places
        url, endpoint = (self._flash_url, FLASH) if flash else (self._url, SEND)
        return await retrying(self._post_once, payload, url, endpoint, places)

    async def _post_once(
        self, payload: bytes, url: str, endpoint: str, places: asyncio.Semaphore | None
    ) -> list[SubmittedSms]:
        if places is None:
            return await self._exchange(payload, url, endpoint)
        async with places:  # one place per attempt: none is held through a back-off
            return await self._exchange(payload, url, endpoint)

    async def _exchange(self, payload: bytes, url: str, endpoint: str) -> list[SubmittedSms]:
        with gateway_request(endpoint):
            return parse_reply(*await self._round_trip("POST", url, data=payload))

    async def _round_trip(self, method: str, url: str, **options: Any) -> tuple[int, bytes]:
        """One request's HTTP status and body; a connection's failure classified."""
        session = self._session_for_loop()
        try:
            async with session.request(method, url, headers=self._headers, **options) as response:
                return response.status, await response.read()
        except aiohttp.ClientConnectorError as e:
            # Refused or unreachable before a byte was sent: nothing can have been delivered.
            raise GatewayUnreachable("CONNECT", f"cannot connect to {self._shown}: {e.os_error}") from e
        except aiohttp.ConnectionTimeoutError as e:
            raise GatewayUnreachable("CONNECT", f"no connection to {self._shown} within the timeout") from e
        except TimeoutError as e:
            raise AmbiguousGatewayError("TIMEOUT", f"no reply within {self._timeout.total}s") from e
        except aiohttp.ClientError as e:
            # The connection broke after the request went out: Kaleyra may have processed it.
            raise AmbiguousGatewayError("DISCONNECTED", type(e).__name__) from e

    async def statuses(self, message_ids: Sequence[str]) -> list[QueriedStatus]:
        """Ask Kaleyra's status query for these messages (one attempt: a GET changes nothing, and the
        caller asks again later); an id Kaleyra does not know is left out of the answer. Errors are
        classified as a send's are."""
        params = {"message_ids": ",".join(message_ids)}
        with gateway_request(STATUS):
            return parse_status_reply(*await self._round_trip("GET", self._status_url, params=params))

    async def probe(self) -> GatewayError | None:
        """Ask the gateway, without sending anything, whether the account can send: the fault that
        still stands (the key refused, no connection, no answer), or None once it takes the key."""
        try:
            await self._exchange(PROBE_PAYLOAD, self._url, PROBE)
        except (AccountFault, GatewayUnreachable, AmbiguousGatewayError) as fault:
            return fault
        except GatewayError:
            return None  # refused on its merits (E703), or busy (E403): the key got through
        return None

    def _session_for_loop(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
