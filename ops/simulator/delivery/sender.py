"""Sends reports when they fall due: one heap and one timer for all of them, a bounded pool of
senders on one keep-alive session, retries with back-off.

Tens of thousands of pending reports cost a heap entry each, not a task or a timer each. A
message's reports go one after the other: the next waits for the previous one's acknowledgement
or last attempt, so the order a receiver sees is the order planned (an out-of-order message's
final report always arrives before its Sent report).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math

import aiohttp
import msgspec

from ops.simulator.delivery.config import MAX_CONCURRENCY, TOKEN_HEADER, ReportsConfig
from ops.simulator.delivery.record import MessageReports, Report, ReportsRecord
from ops.simulator.delivery.statuses import DESCRIPTIONS

_ENCODER = msgspec.json.Encoder()
_JSON = {"Content-Type": "application/json"}


class _Chain:
    """A message's reports still to send; `index` is the next one."""

    __slots__ = ("accepted_at", "config", "delays", "generation", "index", "message")

    def __init__(
        self,
        message: MessageReports,
        delays: list[float],
        accepted_at: float,
        config: ReportsConfig,
        generation: int,
    ) -> None:
        self.message = message
        self.delays = delays
        self.accepted_at = accepted_at  # the loop's clock
        self.config = config  # the one in force when the message was accepted
        self.generation = generation
        self.index = 0


class ReportSender:
    """Lives on the server's event loop; its tasks start with the first report and stop in `close()`."""

    def __init__(self, record: ReportsRecord) -> None:
        self._record = record
        self._heap: list[tuple[float, int, _Chain]] = []
        self._order = itertools.count()  # ties keep the order of arrival
        self._wake = asyncio.Event()
        self._next_due = math.inf  # what the scheduler's timer is set for
        self._due: asyncio.Queue[_Chain] = asyncio.Queue()
        self._scheduler: asyncio.Task[None] | None = None
        self._senders: set[asyncio.Task[None]] = set()
        self._wanted = 1
        self._session: aiohttp.ClientSession | None = None
        self._generation = 0  # a clear() leaves reports already taken by a sender to be forgotten

    def send(
        self, message: MessageReports, delays: list[float], accepted_at: float, config: ReportsConfig
    ) -> None:
        """Plans `message.reports`, each `delays[i]` seconds after `accepted_at` at the earliest."""
        self._ensure_started(config.concurrency)
        self._push(accepted_at + delays[0], _Chain(message, delays, accepted_at, config, self._generation))

    def clear(self) -> None:
        self._generation += 1
        self._heap.clear()
        while not self._due.empty():
            self._due.get_nowait()

    async def close(self) -> None:
        tasks = [*self._senders, *([self._scheduler] if self._scheduler else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._senders.clear()
        self._scheduler = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _ensure_started(self, concurrency: int) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=MAX_CONCURRENCY)
            self._session = aiohttp.ClientSession(connector=connector)
        if self._scheduler is None:
            self._scheduler = asyncio.get_running_loop().create_task(self._schedule())
        self._wanted = concurrency  # senders beyond it leave after their current report
        while len(self._senders) < concurrency:
            task = asyncio.get_running_loop().create_task(self._serve())
            self._senders.add(task)
            task.add_done_callback(self._senders.discard)

    def _push(self, due: float, chain: _Chain) -> None:
        heapq.heappush(self._heap, (due, next(self._order), chain))
        if due < self._next_due:
            self._wake.set()

    async def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        heap = self._heap
        while True:
            now = loop.time()
            while heap and heap[0][0] <= now:
                self._due.put_nowait(heapq.heappop(heap)[2])
            self._wake.clear()
            self._next_due = heap[0][0] if heap else math.inf
            timer = loop.call_at(self._next_due, self._wake.set) if heap else None
            try:
                await self._wake.wait()
            finally:
                if timer is not None:
                    timer.cancel()

    async def _serve(self) -> None:
        while len(self._senders) <= self._wanted:
            chain = await self._due.get()
            if chain.generation == self._generation:
                await self._attempt(chain)
        self._senders.discard(asyncio.current_task())  # type: ignore[arg-type]

    async def _attempt(self, chain: _Chain) -> None:
        report = chain.message.reports[chain.index]
        config = chain.config
        report.attempts += 1
        error = await self._post(config, chain.message, report)
        if chain.generation != self._generation:
            return
        now = asyncio.get_running_loop().time()
        if error is None:
            report.state = "acknowledged"
        else:
            report.last_error = error
            self._record.failed_attempts += 1
            if report.attempts < config.max_attempts:
                back_off_ms = min(config.retry_ms * 2 ** (report.attempts - 1), config.max_retry_ms)
                self._push(now + back_off_ms / 1000, chain)
                return
            report.state = "gave_up"
        chain.index += 1
        if chain.index < len(chain.delays):
            self._push(max(chain.accepted_at + chain.delays[chain.index], now), chain)

    async def _post(self, config: ReportsConfig, message: MessageReports, report: Report) -> str | None:
        """None when the receiver answered 2xx, else what went wrong."""
        assert self._session is not None and config.url is not None  # started by send(); planned with a url
        variables = {
            "id": message.message_id,
            "recipient": message.recipient,
            "sender": message.sender,
            "status": report.status,
            "status_trace": report.status_trace,
            "description": DESCRIPTIONS.get(report.status_trace, report.status_trace),
            "timestamp": report.timestamp,
        }
        fields = {name: text.format_map(variables) for name, text in config.template.items()}
        headers = dict(config.headers)
        if config.token is not None:
            headers[TOKEN_HEADER] = config.token
        timeout = aiohttp.ClientTimeout(total=config.timeout_ms / 1000)
        if config.method == "GET":
            request = self._session.get(config.url, params=fields, headers=headers, timeout=timeout)
        elif config.body == "json":
            body = _ENCODER.encode(fields)
            request = self._session.post(config.url, data=body, headers=headers | _JSON, timeout=timeout)
        else:
            request = self._session.post(config.url, data=fields, headers=headers, timeout=timeout)
        try:
            async with request as response:
                await response.read()
                return None if 200 <= response.status < 300 else f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError) as error:
            return type(error).__name__
