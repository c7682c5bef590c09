"""A bulk job hands its thread over once per urgent job waiting in dramatiq's work queue."""

from __future__ import annotations

from queue import PriorityQueue

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.worker import _WorkQueueItem  # what dramatiq's consumers put on the work queue

from redis_model import keys
from worker.urgent import CAME_BACK, UrgentWatch


def _waiting(lane: keys.Lane, **options) -> _WorkQueueItem:
    message = dramatiq.Message(queue_name=lane.queue, actor_name=lane.actor, args=("c", 0), kwargs={},
                               options=options)  # fmt: skip
    return _WorkQueueItem(lane.priority, MessageProxy(message))


def _watch(*items: _WorkQueueItem) -> UrgentWatch:
    work_queue: PriorityQueue[_WorkQueueItem] = PriorityQueue()
    for item in items:
        work_queue.put(item)
    return UrgentWatch(work_queue)


def test_no_urgent_job_waiting_means_no_hand_over():
    assert not UrgentWatch().hand_over()  # before the worker boots
    assert not _watch().hand_over()
    assert not _watch(_waiting(keys.BULK_LANE), _waiting(keys.BULK_LANE)).hand_over()


def test_one_bulk_job_hands_over_per_urgent_job_waiting():
    watch = _watch(_waiting(keys.BULK_LANE), _waiting(keys.OTP_LANE), _waiting(keys.TXN_LANE))
    assert [watch.hand_over() for _ in range(3)] == [True, True, False]


def test_an_urgent_job_that_came_back_makes_no_bulk_job_hand_over():
    """Paused or held, it comes back every few seconds: it waits for a thread to free up instead."""
    assert not _watch(_waiting(keys.TXN_LANE, **{CAME_BACK: True})).hand_over()
