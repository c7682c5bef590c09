"""Single messages that requests handled in the same turn of the event loop queue, sent to Redis
together: one pipelined round trip of an XADD each, rather than a round trip per request."""

from __future__ import annotations

import asyncio

from redis_model.keys import Lane
from redis_model.message_intake import AsyncMessageIntake
from schemas.message import SingleMessage

_Waiting = tuple[SingleMessage, Lane, "asyncio.Future[str]"]


class CoalescingIntake:
    """`queue` as `AsyncMessageIntake.queue` (one XADD a message, its id back), the messages of one
    turn of the loop in one pipeline. Redis failing the pipeline fails each of its requests."""

    def __init__(self, intake: AsyncMessageIntake) -> None:
        self.intake = intake
        self._waiting: list[_Waiting] = []
        self._sending: set[asyncio.Task[None]] = set()  # referenced until done (asyncio keeps weak ones)

    async def queue(self, message: SingleMessage, lane: Lane) -> str:
        loop = asyncio.get_running_loop()
        queued: asyncio.Future[str] = loop.create_future()
        if not self._waiting:  # the first of this turn: the others ready now join before it goes
            loop.call_soon(self._send_waiting)
        self._waiting.append((message, lane, queued))
        return await queued

    def _send_waiting(self) -> None:
        waiting, self._waiting = self._waiting, []
        task = asyncio.ensure_future(self._send(waiting))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, waiting: list[_Waiting]) -> None:
        try:
            ids = await self.intake.queue_many([(message, lane) for message, lane, _ in waiting])
        except BaseException as e:
            for *_, queued in waiting:
                if not queued.done():
                    queued.set_exception(e)
            if not isinstance(e, Exception):
                raise
            return
        for (*_, queued), message_id in zip(waiting, ids, strict=True):
            if not queued.done():
                queued.set_result(message_id)
