"""The single-message consumer of a worker process: a task per lane reads batches from its stream and
sends them, and a reclaim pass every lease takes over what dead consumers left."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from typing import Any

import redis

from redis_model import keys
from redis_model.message_lanes import MessageLanes, Reclaimed, Taken
from worker.context import WorkerContext
from worker.gates import account_open
from worker.message_batch import BatchSender
from worker.metrics import CountedLanes

# Messages read at once per lane: a request's worth (TXN 100, bulk 1000); OTP goes one to a request,
# so a read of them becomes that many requests sent together (`message_batch.REQUESTS_AT_ONCE`).
READ_SIZE = {keys.OTP_LANE.queue: 16, keys.TXN_LANE.queue: 100, keys.BULK_LANE.queue: 1000}
# How long a read waits for a first message: a stopping worker notices within it.
READ_BLOCK_MS = 1000
# Batches of a lane being sent at once by one process: while one waits on its POST, the next is read.
BATCHES_IN_FLIGHT = 4
# While the account is held, how often a lane looks again (a cheap read of the hold).
HELD_RECHECK_S = 1.0
# Entries one reclaim pass takes over per lane at most.
RECLAIM_COUNT = 1000
# After a Redis error, how long a lane waits before reading again.
REDIS_PAUSE_S = 1.0


class MessageConsumer:
    """Runs on the worker's event loop from `start()` until `stop()`, which finishes the batches in
    flight. `lease_ms` (default: the settings') is how long a message may stay marked `sending`, and
    how long an entry stays idle before a reclaim pass takes it over."""

    def __init__(self, ctx: WorkerContext, *, lease_ms: int | None = None) -> None:
        self.ctx = ctx
        self.lease_ms = lease_ms if lease_ms is not None else ctx.settings.lease_ms
        self.log = ctx.log.bind(messages=True)
        self._tasks: list[asyncio.Task[None]] = []
        self._batches: set[asyncio.Task[None]] = set()
        # Stream entries a batch of this process is working on: still pending for this consumer, so a
        # reclaim pass takes them over too once idle a lease (a long wait on the rate limit, on a
        # connection), and must leave them to their batch rather than send them a second time.
        self._in_flight: set[str] = set()
        self._stopping: asyncio.Event | None = None
        self._lanes: MessageLanes | None = None

    @property
    def lanes(self) -> MessageLanes:
        if self._lanes is None:
            self._lanes = CountedLanes(  # counts what it settles (worker.metrics)
                self.ctx.store.client,
                consumer=self.ctx.identity,
                lease_ms=self.lease_ms,
                retention_s=self.ctx.settings.retention_s,
                poll_after_s=self.ctx.settings.dlr_poll_after_s,
            )
        return self._lanes

    def start(self) -> None:
        """Start the lanes' readers and the reclaim passes (call on the event loop)."""
        self._stopping = asyncio.Event()
        sender = BatchSender(self.ctx, self.lanes)
        self._tasks = [asyncio.ensure_future(self._read_lane(lane, sender)) for lane in keys.LANES]
        self._tasks.append(asyncio.ensure_future(self._reclaim_passes(sender)))

    async def stop(self) -> None:
        """Stop reading, and return once the batches in flight are settled (or released)."""
        if self._stopping is not None:
            self._stopping.set()
        # A read in progress ends within its block; past twice that, it is cancelled (what Redis
        # handed over then stays pending, for a reclaim pass).
        if self._tasks:
            _done, late = await asyncio.wait(self._tasks, timeout=2 * READ_BLOCK_MS / 1000)
            for task in late:
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*self._batches, return_exceptions=True)
        self._tasks = []

    @property
    def stopping(self) -> bool:
        return self.ctx.stopping or (self._stopping is not None and self._stopping.is_set())

    async def _read_lane(self, lane: keys.Lane, sender: BatchSender) -> None:
        """Read the lane's batches and send them, a few at once, until stopped."""
        places = asyncio.Semaphore(BATCHES_IN_FLIGHT)
        await self._ready()
        while not self.stopping:
            if (capped_for := sender.capped_until - time.monotonic()) > 0:
                await self._pause(capped_for)  # the account's daily cap: the messages wait queued
                continue
            await places.acquire()
            try:
                batch = await self.next_batch(lane)
            except redis.RedisError as e:
                self.log.error("messages.read_failed", lane=lane.queue, reason=f"Redis: {type(e).__name__}")
                batch = []
                await self._pause(REDIS_PAUSE_S)
            if batch:
                self._spawn(self._send(sender, batch), places.release)
            else:
                places.release()

    async def next_batch(self, lane: keys.Lane, size: int | None = None) -> list[Taken]:
        """A batch of up to `size` (default: a request's worth) of the lane's messages; none while the
        account is held (after a pause). A short first read waits `message_linger_ms` for company, but
        for OTP: each goes alone anyway."""
        if not await account_open(self.ctx, self.log):
            await self._pause(HELD_RECHECK_S)
            return []
        size = size or READ_SIZE[lane.queue]
        batch = await self.lanes.read(lane, size, block_ms=READ_BLOCK_MS)
        linger_s = self.ctx.settings.message_linger_ms / 1000
        if batch and len(batch) < size and linger_s and lane is not keys.OTP_LANE:
            await asyncio.sleep(linger_s)
            batch += await self.lanes.read(lane, size - len(batch))
        return batch

    async def _send(self, sender: BatchSender, batch: list[Taken]) -> None:
        entries = [taken.entry for taken in batch]
        self._in_flight.update(entries)
        try:
            await sender.send(batch)
        except Exception as e:
            # What was marked `sending` is settled unknown by a reclaim pass; the rest is sent by one.
            self.log.exception("messages.batch_failed", messages=len(batch), reason=type(e).__name__)
        finally:
            self._in_flight.difference_update(entries)

    async def _reclaim_passes(self, sender: BatchSender) -> None:
        """At start, then every lease: take over the lanes' entries idle past it."""
        await self._ready()
        while not self.stopping:
            for lane in keys.LANES:
                try:
                    reclaimed = self._not_in_flight(await self.lanes.reclaim(lane, RECLAIM_COUNT))
                    if reclaimed.lost:
                        await sender.settle_lost(reclaimed.lost)
                except redis.RedisError as e:
                    reason = f"Redis: {type(e).__name__}"
                    self.log.error("messages.reclaim_failed", lane=lane.queue, reason=reason)
                    continue
                if reclaimed.to_send:
                    self.log.info("messages.reclaimed", lane=lane.queue, messages=len(reclaimed.to_send))
                    self._spawn(self._send(sender, reclaimed.to_send), None)
            await self._pause(self.lease_ms / 1000)

    def _not_in_flight(self, reclaimed: Reclaimed) -> Reclaimed:
        """What a reclaim pass took over, less what a batch of this process is still working on."""
        in_flight = self._in_flight
        return Reclaimed(
            [taken for taken in reclaimed.to_send if taken.entry not in in_flight],
            [taken for taken in reclaimed.lost if taken.entry not in in_flight],
        )

    async def _ready(self) -> None:
        """The lanes' consumer group exists (retried through a Redis outage)."""
        while not self.stopping:
            try:
                await self.lanes.ensure_groups()
                return
            except redis.RedisError as e:
                self.log.error("messages.no_group", reason=f"Redis: {type(e).__name__}")
                await self._pause(REDIS_PAUSE_S)

    def _spawn(self, coroutine: Coroutine[Any, Any, None], done: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._batches.add(task)
        task.add_done_callback(self._batches.discard)
        if done is not None:
            task.add_done_callback(lambda _task: done())

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when stopped."""
        assert self._stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
