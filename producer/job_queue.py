"""Where a campaign's jobs go: one dramatiq message per job on its lane's queue, by actor name, through
a broker of the producer's own (no worker import), which rings the idle workers' doorbell."""

from __future__ import annotations

from collections.abc import Iterable

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

from redis_model import keys
from redis_model.doorbell import RingDoorbell


def job_broker(client: redis.Redis) -> dramatiq.Broker:
    """A dramatiq broker on `client` to enqueue jobs with; it runs no actor."""
    broker = RedisBroker(client=client)
    broker.add_middleware(RingDoorbell())
    return broker


def enqueue_jobs(
    broker: dramatiq.Broker, campaign_id: str, message_type: str, indices: Iterable[int]
) -> None:
    """One message per job, on the lane of the campaign's type, by actor name (never importing the worker)."""
    lane = keys.lane_of(message_type)
    for index in indices:
        broker.enqueue(
            dramatiq.Message(
                queue_name=lane.queue,
                actor_name=lane.actor,
                args=(campaign_id, index),
                kwargs={},
                options={},
            )
        )
