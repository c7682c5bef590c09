"""The doorbell: every enqueue through our brokers rings a Redis channel of the job's queue, which idle
workers wait on (worker.doorbell), so that a job is taken at once rather than at their next poll.
Producers and workers both ring it; neither needs the other to."""

from __future__ import annotations

import logging

import dramatiq
import redis
from dramatiq.middleware import Middleware

CHANNEL_PREFIX = "campaign:doorbell:"
_log = logging.getLogger(__name__)


def channel(queue_name: str) -> str:
    """The channel an enqueue on `queue_name` rings."""
    return CHANNEL_PREFIX + queue_name


class RingDoorbell(Middleware):
    """Rings the queue's doorbell after each enqueue on a Redis broker (a delayed message waits in the
    delay queue, which is polled: no ring)."""

    def after_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message, delay: int | None) -> None:
        if not delay:
            try:
                broker.client.publish(channel(message.queue_name), b"")  # type: ignore[attr-defined]
            except redis.RedisError:  # the job is queued: workers find it at their next poll
                _log.debug("The doorbell of %r did not ring.", message.queue_name, exc_info=True)
