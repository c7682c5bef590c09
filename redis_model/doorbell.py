"""The doorbell: every enqueue through our brokers rings a Redis channel of the job's queue, which idle
workers wait on (worker.doorbell), so that a job is taken at once rather than at their next poll.
Producers and workers both ring it; neither needs the other to."""

from __future__ import annotations

import dramatiq
from dramatiq.middleware import Middleware

CHANNEL_PREFIX = "campaign:doorbell:"


def channel(queue_name: str) -> str:
    """The channel an enqueue on `queue_name` rings."""
    return CHANNEL_PREFIX + queue_name


class RingDoorbell(Middleware):
    """Rings the queue's doorbell after each enqueue on a Redis broker (a delayed message waits in the
    delay queue, which is polled: no ring)."""

    def after_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message, delay: int | None) -> None:
        if not delay:
            broker.client.publish(channel(message.queue_name), b"")  # type: ignore[attr-defined]
