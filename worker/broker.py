"""The dramatiq broker and the `send_job` actor, wired to one `WorkerContext` per process, and the
process's single-message consumer on the same event loop."""

from __future__ import annotations

import uuid
from typing import Any

import dramatiq
import redis
import uvloop
from dramatiq.asyncio import EventLoopThread, get_event_loop_thread, set_event_loop_thread
from dramatiq.broker import Consumer
from dramatiq.brokers.redis import RedisBroker
from dramatiq.errors import Retry
from dramatiq.middleware import AsyncIO, CurrentMessage, Middleware

from redis_model import keys
from redis_model.connection import sync_client
from redis_model.doorbell import RingDoorbell
from schemas.errors import TransientGatewayError
from schemas.settings import Settings
from worker.callbacks import CallbackSender
from worker.context import WorkerContext
from worker.doorbell import DoorbellConsumer
from worker.dramatiq_private import start_on_uvloop
from worker.logging import flush_events
from worker.messages import MessageConsumer
from worker.reconcile import DeliveryPoller
from worker.sending import send_job
from worker.stops import ComeBackLater
from worker.urgent import CAME_BACK, UrgentWatch


def build_broker(settings: Settings, client: redis.Redis | None = None) -> RedisBroker:
    """A Redis broker with the middleware our actor needs. `client` lets the demo pass fakeredis.

    A worker that stops heartbeating for `heartbeat_timeout_ms` is dead; the next broker
    command that draws maintenance (`maintenance_chance` per million) puts its unacked
    jobs back on the queue. dramatiq's defaults (60 s, 1 in 1000) can leave a killed
    worker's jobs waiting for minutes on a quiet queue; ours redeliver within ~30 s.
    A busy worker that is wrongly judged dead is harmless: its chunk's claim is live,
    so the redelivered copy waits for it.
    """
    broker = _RecoveringRedisBroker(
        client=client or sync_client(settings),
        heartbeat_timeout=settings.heartbeat_timeout_ms,
        maintenance_chance=settings.maintenance_chance,
    )
    broker.add_middleware(_UvloopAsyncIO())
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(RingDoorbell())  # a job this worker enqueues (one that made way) is taken at once
    return broker


class _UvloopAsyncIO(AsyncIO):
    """dramatiq's AsyncIO middleware with its event loop on uvloop: less worker CPU per message than
    asyncio's loop (aiohttp's and redis-py's transports are most of a worker's loop)."""

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        loop_thread = EventLoopThread(self.logger)
        start_on_uvloop(loop_thread, uvloop.new_event_loop())
        set_event_loop_thread(loop_thread)


class _RecoveringRedisBroker(RedisBroker):
    """A RedisBroker that gets back the messages a consumer drops when Redis fails.

    When a consumer fails (Redis restarted, say), dramatiq empties the process's delay queue
    and loses its prefetched messages, yet they stay in this broker's ack sets, which the
    broker's maintenance hands back only once the broker's heartbeat stops: a retry waiting
    in the delay queue would wait until the process restarts (dramatiq issue #527). So a
    consumer that starts again takes a new broker id; the old id's heartbeat stops, and
    within the heartbeat timeout everything it held goes back on its queue. What was still
    running under the old id runs again, which the chunk ledger makes harmless: settled
    chunks are skipped and a live claim makes the copy wait.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._consumed: set[str] = set()

    @property
    def consumer_class(self) -> type[DoorbellConsumer]:
        return DoorbellConsumer

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Consumer:
        if queue_name in self._consumed:
            self.broker_id = str(uuid.uuid4())
        self._consumed.add(queue_name)
        return super().consume(queue_name, prefetch, timeout)


def register_actors(broker: dramatiq.Broker, context: WorkerContext) -> dict[str, dramatiq.Actor]:
    """Declare one actor per lane (OTP, TXN, bulk) on `broker`, by queue name; each runs `send_job`'s
    coroutine on the AsyncIO middleware's event loop."""
    broker.add_middleware(_Lifecycle(context))  # after AsyncIO, so its after-hooks run before the loop stops
    return {lane.queue: _lane_actor(broker, context, lane) for lane in keys.LANES}


_CAME_BACK: dict[str, Any] = {CAME_BACK: True}


def _lane_actor(broker: dramatiq.Broker, context: WorkerContext, lane: keys.Lane) -> dramatiq.Actor:
    settings = context.settings

    def send_job_actor(campaign_id: str, job_index: int) -> None:
        message = CurrentMessage.get_current_message()
        retries = message.options.get("retries", 0) if message else 0
        delivery = message.message_id if message else "direct"
        last_attempt = retries >= settings.job_max_retries
        coroutine = send_job(
            context, campaign_id, job_index, delivery=delivery, last_attempt=last_attempt, urgent=lane.urgent
        )
        try:
            _event_loop().run_coroutine(coroutine)
        except ComeBackLater as later:
            # Not a failure: look again later without spending one of the job's retries.
            actor.send_with_options(args=(campaign_id, job_index), delay=later.delay_ms, **_CAME_BACK)
        except TransientGatewayError as e:
            # Nothing was sent: the job is retried after its back-off, a retry spent. As dramatiq's Retry,
            # which it logs in a line at INFO (the worker's own events say why), not as an unhandled
            # exception with a traceback at ERROR.
            raise Retry(f"{e}: retried later") from e

    actor = dramatiq.Actor(
        send_job_actor,
        broker=broker,
        actor_name=lane.actor,
        queue_name=lane.queue,
        priority=lane.priority,
        options={
            "max_retries": settings.job_max_retries,
            "min_backoff": settings.job_min_backoff_ms,
            "max_backoff": max(settings.job_min_backoff_ms, 300_000),
        },
    )
    return actor


def _event_loop():  # type: ignore[no-untyped-def]
    loop_thread = get_event_loop_thread()
    if loop_thread is None:
        raise RuntimeError("the AsyncIO middleware has not started its event loop; is the worker booted?")
    return loop_thread


class _Lifecycle(Middleware):
    """At boot: bulk jobs watch this worker's work queue for urgent jobs waiting for a thread, and the
    single-message consumer, the delivery poller and the callbacks' sender start on the event loop. On
    shutdown: jobs stop after their current chunk, the consumer after its batches in flight, the poller
    and the sender after their pass; then the HTTP sessions and Redis client close."""

    def __init__(self, context: WorkerContext) -> None:
        self.context = context
        self.messages = MessageConsumer(context)
        self.reconcile = DeliveryPoller(context)
        self.callbacks = CallbackSender(context)

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.context.urgent = UrgentWatch(worker.work_queue)
        _event_loop().loop.call_soon_threadsafe(self.messages.start)
        _event_loop().loop.call_soon_threadsafe(self.reconcile.start)
        _event_loop().loop.call_soon_threadsafe(self.callbacks.start)

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.context.stopping = True

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        flush_events()
        loop_thread = get_event_loop_thread()
        if loop_thread is not None:
            loop_thread.run_coroutine(self.messages.stop())
            loop_thread.run_coroutine(self.reconcile.stop())
            loop_thread.run_coroutine(self.callbacks.stop())
            flush_events()
            loop_thread.run_coroutine(self.context.aclose())
