"""Wake dramatiq's Redis consumers when there is work, rather than when they next poll.

dramatiq's Redis consumer sleeps between fetches, backing off up to the worker timeout (100 ms
under `campaign worker`), in two cases: the queue was empty, or the consumer holds as many messages
as it may prefetch. A campaign or an OTP published to idle workers waited up to that long to be
picked up, and a busy worker whose threads finished their prefetched jobs waited for its consumer
to wake before fetching more. Here the first case waits on the Redis channel that every enqueue
through our brokers rings (redis_model.doorbell), and the second on the worker's own
acknowledgements; both still give up after the timeout, so a message enqueued by another client is
found as before.
"""

from __future__ import annotations

import threading
from typing import Any

import redis
from dramatiq.errors import ConnectionClosed

from redis_model.doorbell import channel
from worker.dramatiq_private import RedisConsumer


class DoorbellConsumer(RedisConsumer):
    def __init__(self, broker: Any, queue_name: str, prefetch: int, timeout: int) -> None:
        super().__init__(broker, queue_name, prefetch, 0)  # dramatiq's own back-off: none
        self._wait_s = timeout / 1000
        self._freed = threading.Event()  # set when a message of ours is acked or nacked
        self._bell: redis.client.PubSub | None = None  # subscribed at the first wait for work

    def __next__(self) -> Any:
        message = super().__next__()
        if message is None:
            self._wait()
        return message

    def ack(self, message: Any) -> None:
        try:
            super().ack(message)
        finally:
            self._freed.set()

    def nack(self, message: Any) -> None:
        try:
            super().nack(message)
        finally:
            self._freed.set()

    def close(self) -> None:
        if self._bell is not None:
            self._bell.close()
            self._bell = None

    def _wait(self) -> None:
        self._freed.clear()  # before the count: an ack from now on ends the wait
        if self.outstanding_message_count >= self.prefetch:
            self._freed.wait(self._wait_s)
            return
        try:
            if self._bell is None:
                self._bell = self.broker.client.pubsub(ignore_subscribe_messages=True)
                self._bell.subscribe(channel(self.queue_name))
            if self._bell.get_message(timeout=self._wait_s) is not None:
                while self._bell.get_message(timeout=0) is not None:  # one fetch for many rings
                    pass
        except redis.ConnectionError as e:
            self.close()
            raise ConnectionClosed(e) from None
