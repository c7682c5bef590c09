"""Every use of dramatiq's private internals, in one place, checked against the installed version.

dramatiq gives no public way to wait on a Redis consumer's fetches, to see what a worker has
fetched and not started, or to run its AsyncIO middleware's loop on uvloop. What we take from it
is named here; `check()`, run by the tests, names the dramatiq version when an upgrade moves any
of it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from queue import PriorityQueue
from typing import Any

import dramatiq
import dramatiq.worker
from dramatiq.asyncio import EventLoopThread
from dramatiq.brokers.redis import _RedisConsumer

TESTED_VERSIONS = "2.2"

# The Redis consumer we subclass: its fetch (`__next__`), `ack`/`nack`, `prefetch`, `queue_name`,
# `broker` and `outstanding_message_count`.
RedisConsumer = _RedisConsumer


class DramatiqChanged(RuntimeError):
    """An internal this project relies on is not where it was."""


def fetched_not_started(work_queue: PriorityQueue[Any]) -> Iterator[tuple[int, dramatiq.Message]]:
    """(priority, message) of each message a worker fetched and that waits for one of its threads.
    The queue's items are `_WorkQueueItem`s; it is read without its lock, as a copy of its list
    (atomic under the GIL), at worst a moment stale."""
    for item in work_queue.queue[:]:
        yield item.priority, item.message


def start_on_uvloop(loop_thread: EventLoopThread, loop: asyncio.AbstractEventLoop) -> None:
    """Start the AsyncIO middleware's event loop thread on `loop` rather than the loop it made. The
    thread is a daemon: a worker process told to stop twice (a SIGTERM to the whole process group:
    the signal, then its parent's) exits at once, as dramatiq means it to, rather than wait for a
    loop nothing will stop (the ledger's claims cover what it was sending)."""
    loop_thread.loop.close()  # its own, never run
    loop_thread.loop = loop
    loop_thread.daemon = True
    loop_thread.start(timeout=1.0)


def check() -> None:
    """Raise `DramatiqChanged`, naming the installed version, if an internal used here moved."""
    missing = [name for name, present in _internals() if not present]
    if missing:
        raise DramatiqChanged(
            f"dramatiq {dramatiq.__version__} moved {', '.join(missing)}, which worker/dramatiq_private.py "
            f"relies on (tested with {TESTED_VERSIONS}): adapt that module, or pin dramatiq"
        )


def _internals() -> Iterator[tuple[str, bool]]:
    for name in ("__next__", "ack", "nack", "outstanding_message_count"):
        yield f"_RedisConsumer.{name}", hasattr(RedisConsumer, name)
    yield "EventLoopThread.loop", "loop" in getattr(EventLoopThread, "__annotations__", {})
    yield "worker._WorkQueueItem(priority, message)", _work_queue_item_fields()


def _work_queue_item_fields() -> bool:
    item = getattr(dramatiq.worker, "_WorkQueueItem", None)
    if item is None or not dataclasses.is_dataclass(item):
        return False
    return {"priority", "message"} <= {field.name for field in dataclasses.fields(item)}
