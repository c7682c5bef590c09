"""Consumers wake when there is work: an enqueue through our broker, or one of their own messages
acknowledged, not their next poll. The workers here poll every WAIT_MS; each test needs its
messages handled well within that, which only a wake-up gives."""

from __future__ import annotations

import threading
import time

import dramatiq
import pytest

from redis_model.doorbell import channel
from worker.broker import build_broker

WAIT_MS = 4000
QUEUE = "doorbell-test"


@pytest.fixture
def broker_and_worker(backend, make_settings):
    """A broker of ours on `backend`; `start()` runs a one-thread worker on it (prefetch: 2)."""
    broker = build_broker(make_settings("http://127.0.0.1:9"), backend.client)
    workers: list[dramatiq.Worker] = []

    def start() -> dramatiq.Worker:
        worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=WAIT_MS)
        worker.start()
        workers.append(worker)
        return worker

    yield broker, start
    for worker in workers:
        worker.stop()


def test_an_idle_consumer_takes_a_message_as_it_is_enqueued(backend, broker_and_worker):
    broker, start = broker_and_worker
    handled = threading.Event()
    ping = dramatiq.actor(handled.set, broker=broker, actor_name="ping", queue_name=QUEUE)
    start()
    deadline = time.monotonic() + 10
    # Listening on the channel: the consumer found the queue empty and waits (WAIT_MS at most).
    while backend.client.pubsub_numsub(channel(QUEUE))[0][1] < 1:
        assert time.monotonic() < deadline, "the consumer never waited for the doorbell"
        time.sleep(0.01)

    ping.send()

    assert handled.wait(WAIT_MS / 1000 / 2)


def test_a_consumer_holding_all_it_may_prefetch_fetches_again_once_a_message_is_done(broker_and_worker):
    """Six messages queued for one thread that may hold two: each done message makes room for the
    next at once, rather than at the consumer's next poll."""
    broker, start = broker_and_worker
    done: list[int] = []
    all_done = threading.Event()

    def record(n: int) -> None:
        done.append(n)
        if len(done) == 6:
            all_done.set()

    count = dramatiq.actor(record, broker=broker, actor_name="count", queue_name=QUEUE)
    for n in range(6):
        count.send(n)
    start()

    assert all_done.wait(WAIT_MS / 1000 / 2)
    assert sorted(done) == list(range(6))
