"""`GET /metrics` of `campaign serve`: its requests by route and status, the delivery reports it received by
verdict and the single messages it queued, for all its processes at once, with the gauges read from Redis
(`worker.redis_metrics`). docs/metrics.md describes each."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence

import redis
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

from campaign.service.errors import Handler
from redis_model import keys
from redis_model.connection import sync_client
from redis_model.message_intake import AsyncMessageIntake, BatchEntry, QueuedOnce
from schemas.message import SingleMessage
from schemas.settings import Settings
from worker.exposition import CONTENT_TYPE, scrape
from worker.redis_metrics import RedisGauges

METRICS_PATH = "/metrics"
REDIS_TIMEOUT_S = 5.0  # a scrape of a Redis that does not answer fails within this
# This process's metrics when it is the only one (tests, `campaign serve --processes 1` started otherwise).
REGISTRY = CollectorRegistry()
_UNMATCHED = "unmatched"  # the route label of a request no route took (a 404)

REQUESTS = Counter(
    "campaign_http_requests",
    "Requests answered by campaign serve, by route (its pattern), method and status",
    ["route", "method", "status"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "campaign_http_request_seconds",
    "Time campaign serve took to answer a request, by route and method",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60),
    registry=REGISTRY,
)
REPORTS = Counter(
    "campaign_delivery_reports",
    "Delivery reports received by verdict: recorded (moved a message on), unchanged (a duplicate, or "
    "less final than one already there), early (kept until its request is settled), unmatched (no "
    "message of ours)",
    ["verdict"],
    registry=REGISTRY,
)
QUEUED = Counter(
    "campaign_messages_queued",
    "Single messages queued by campaign serve's API, by lane (an idempotent replay queues none)",
    ["lane"],
    registry=REGISTRY,
)
_VERDICTS = ("recorded", "unchanged", "early", "unmatched")


def add_metrics(app: web.Application, settings: Settings, client: redis.Redis | None = None) -> None:
    """`GET /metrics`, reading Redis's gauges on `client` (a sync one, as the test's fakeredis) or its own."""
    gauges_key = web.AppKey("metrics_gauges", RedisGauges)

    async def gauges(app: web.Application) -> AsyncIterator[None]:
        sync = client or sync_client(
            settings, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
        )
        app[gauges_key] = RedisGauges(sync, settings.sid, settings.metrics_census_s)
        yield
        if client is None:
            sync.close()

    async def metrics(request: web.Request) -> web.Response:
        # Read off the event loop: the Redis gauges take a round trip per page of campaigns.
        text = await asyncio.get_running_loop().run_in_executor(
            None, lambda: scrape(settings.metrics_dir, request.app[gauges_key], own=REGISTRY)
        )
        return web.Response(body=text, headers={"Content-Type": CONTENT_TYPE})

    app.cleanup_ctx.append(gauges)
    app.router.add_get(METRICS_PATH, metrics)


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count and time each request by its route's pattern (`/v1/messages/{id}`: no id in a label)."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as e:
        status = e.status
        raise
    finally:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else _UNMATCHED
        REQUESTS.labels(route, request.method, str(status)).inc()
        REQUEST_SECONDS.labels(route, request.method).observe(time.perf_counter() - started)


def count_reports(recorded: object) -> None:
    """What the store did with a call's reports (`redis_model.delivery.Recorded`), by verdict."""
    for verdict in _VERDICTS:
        if amount := getattr(recorded, verdict, 0):
            REPORTS.labels(verdict).inc(amount)


class CountedIntake(AsyncMessageIntake):
    """The message intake, counting the messages it queues."""

    async def queue(self, message: SingleMessage, lane: keys.Lane) -> str:
        queued = await super().queue(message, lane)
        QUEUED.labels(keys.MESSAGE_LANES[lane.queue]).inc()
        return queued

    async def queue_once(
        self, message: SingleMessage, lane: keys.Lane, scope: str, key_digest: str, request_digest: str
    ) -> QueuedOnce:
        queued = await super().queue_once(message, lane, scope, key_digest, request_digest)
        if not queued.replayed:
            QUEUED.labels(keys.MESSAGE_LANES[lane.queue]).inc()
        return queued

    async def queue_batch(self, entries: Sequence[BatchEntry], scope: str) -> list[str | QueuedOnce]:
        outcomes = await super().queue_batch(entries, scope)
        for (_, lane, _), outcome in zip(entries, outcomes, strict=True):
            if not (isinstance(outcome, QueuedOnce) and outcome.replayed):
                QUEUED.labels(keys.MESSAGE_LANES[lane.queue]).inc()
        return outcomes
