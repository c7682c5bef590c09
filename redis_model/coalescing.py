"""Calls made in the same turn of the event loop, sent to Redis together: one round trip for all of
them rather than one each (requests of the HTTP intake, `AsyncCampaigns.send_message`, a worker's
settlements)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Coalesced(Generic[Item, Result]):
    """`await coalesced(item)` is `run([item])[0]`, but the items of one loop turn go in one `run`.

    `run` takes the items in the order they came and returns a result for each, in that order. If
    it raises, every caller of its turn gets the exception. A turn's call is a task of its own, so a
    caller cancelled meanwhile (a client gone) does not cancel the others' round trip."""

    def __init__(self, run: Callable[[list[Item]], Awaitable[Sequence[Result]]]) -> None:
        self._run = run
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._running: set[asyncio.Task[None]] = set()  # referenced until done (asyncio keeps weak ones)

    async def __call__(self, item: Item) -> Result:
        loop = asyncio.get_running_loop()
        result: asyncio.Future[Result] = loop.create_future()
        if not self._waiting:  # the first of this turn: the others ready now join before it goes
            loop.call_soon(self._run_waiting)
        self._waiting.append((item, result))
        return await result

    def _run_waiting(self) -> None:
        waiting, self._waiting = self._waiting, []
        task = asyncio.ensure_future(self._run_turn(waiting))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run_turn(self, waiting: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._run([item for item, _ in waiting])
        except BaseException as e:
            for _, result in waiting:
                if not result.done():
                    result.set_exception(e)
            if not isinstance(e, Exception):
                raise
            return
        for (_, result), value in zip(waiting, results, strict=True):
            if not result.done():
                result.set_result(value)
