"""The dramatiq internals this project relies on are where `worker.dramatiq_private` expects them."""

from __future__ import annotations

import asyncio
from queue import PriorityQueue

import dramatiq
import pytest
from dramatiq.broker import MessageProxy
from dramatiq.worker import _WorkQueueItem

from worker import dramatiq_private


def test_the_installed_dramatiq_has_every_internal_we_use():
    dramatiq_private.check()


def test_a_moved_internal_is_named_with_the_installed_version(monkeypatch):
    monkeypatch.delattr(dramatiq_private.RedisConsumer, "outstanding_message_count")

    with pytest.raises(dramatiq_private.DramatiqChanged) as caught:
        dramatiq_private.check()

    assert f"dramatiq {dramatiq.__version__} moved _RedisConsumer.outstanding_message_count" in str(
        caught.value
    )


def test_fetched_messages_are_read_with_their_priority_without_taking_them():
    work_queue: PriorityQueue[_WorkQueueItem] = PriorityQueue()
    message = dramatiq.Message(queue_name="q", actor_name="a", args=(), kwargs={}, options={})
    work_queue.put(_WorkQueueItem(7, MessageProxy(message)))

    ((priority, proxy),) = dramatiq_private.fetched_not_started(work_queue)

    assert (priority, proxy.message_id) == (7, message.message_id)
    assert work_queue.qsize() == 1


def test_the_event_loop_thread_runs_the_loop_it_is_given():
    import logging

    from dramatiq.asyncio import EventLoopThread

    loop_thread = EventLoopThread(logging.getLogger("test"))
    given = asyncio.new_event_loop()
    dramatiq_private.start_on_uvloop(loop_thread, given)
    try:
        assert loop_thread.run_coroutine(asyncio.sleep(0, result="ran")) == "ran"
        assert loop_thread.loop is given
        assert loop_thread.daemon  # a process stopped hard does not wait for it
    finally:
        loop_thread.stop()
        loop_thread.join()
