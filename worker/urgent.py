"""When a bulk job should hand its worker thread to an OTP or TXN job waiting for one."""

from __future__ import annotations

import collections
from queue import PriorityQueue
from typing import Any

from redis_model import keys
from worker.dramatiq_private import fetched_not_started

# Set on a job sent again because it could not go yet (paused, held, its chunk busy): an urgent one,
# coming back every few seconds, must not make a running bulk job hand its thread over each time.
CAME_BACK = "came_back"


class UrgentWatch:
    """Looks through dramatiq's work queue (the messages fetched for this process and waiting for a
    thread, their priority the lane's) for OTP and TXN jobs. A bulk job asks after each chunk; the
    first to ask while a given urgent job waits hands its thread over, and the others go on. Only
    the event loop's thread asks."""

    def __init__(self, work_queue: PriorityQueue[Any] | None = None) -> None:
        self._work_queue = work_queue
        self._handed_over: collections.deque[str] = collections.deque(maxlen=64)

    def hand_over(self) -> bool:
        """Whether the asking bulk job should hand its thread over: an urgent job waits, and no other
        bulk job has done so for it yet."""
        for message_id in self._waiting():
            if message_id not in self._handed_over:
                self._handed_over.append(message_id)
                return True
        return False

    def _waiting(self) -> list[str]:
        """The message ids of the urgent jobs waiting for a thread, but those that came back."""
        if self._work_queue is None:
            return []
        try:
            return [
                message.message_id
                for priority, message in fetched_not_started(self._work_queue)
                if priority < keys.BULK_LANE.priority and not message.options.get(CAME_BACK)
            ]
        except (AttributeError, TypeError):  # a dramatiq whose work queue differs: none is seen
            return []
