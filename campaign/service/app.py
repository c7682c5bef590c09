"""The aiohttp application of one `campaign serve` process: its routes, middlewares, and the clients it
opens at start-up and closes at shutdown; `/healthz`, `/readyz` and `/openapi.json`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import redis
import redis.asyncio as aioredis
import structlog
from aiohttp import web

from campaign.service import campaigns, dlr, messages, openapi, pages
from campaign.service.auth import KeyCache, RateLimiter, auth_middleware
from campaign.service.bodies import Health
from campaign.service.config import ServiceConfig
from campaign.service.context import SERVICE, DeliveryStore, Service
from campaign.service.errors import ApiError, errors_middleware, json_response
from campaign.service.metrics import CountedIntake, add_metrics, metrics_middleware
from producer import AsyncCampaigns, Campaigns
from redis_model.api_keys import AsyncApiKeyStore
from redis_model.connection import async_client as redis_async_client
from redis_model.connection import sync_client
from redis_model.delivery import AsyncDeliveryReports
from schemas.settings import Settings


def make_app(
    settings: Settings,
    config: ServiceConfig,
    *,
    client: redis.Redis | None = None,
    async_client: Callable[[], aioredis.Redis] | None = None,
    deliveries: Callable[[aioredis.Redis], DeliveryStore] | None = None,
) -> web.Application:
    """The app on the Redis `settings` names, or on `client` (sync, for campaigns) and the clients
    `async_client` makes (for single messages, delivery reports and keys), as tests give fakeredis;
    `deliveries` makes the delivery reports' store on the async client (tests give a fake)."""
    app = web.Application(
        middlewares=[
            metrics_middleware,
            errors_middleware,
            auth_middleware(lambda request: request.app[SERVICE].keys),
        ],
        client_max_size=config.max_json_bytes,
    )

    async def service(app: web.Application) -> AsyncIterator[None]:
        sync = client if client is not None else sync_client(settings)
        native = async_client() if async_client is not None else redis_async_client(settings)
        api = AsyncCampaigns(Campaigns(sync, settings), client=native)
        intake = CountedIntake(native)  # counts what it queues, for /metrics
        app[SERVICE] = Service(
            campaigns=api,
            intake=intake,
            deliveries=(deliveries or _delivery_store(settings))(native),
            keys=KeyCache(AsyncApiKeyStore(native), config.key_cache_s),
            limiter=RateLimiter(),
            settings=settings,
            config=config,
        )
        with contextlib.suppress(redis.RedisError):  # not ready: /readyz says so, a message loads it
            await intake.load_scripts()
        matching = asyncio.ensure_future(dlr.match_early_reports(app[SERVICE])) if config.dlr.on else None
        yield
        if matching is not None:
            matching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await matching
        if client is None:
            await api.close()
        else:  # the caller's client stays open
            await native.aclose()

    app.cleanup_ctx.append(service)
    messages.add_routes(app)
    campaigns.add_routes(app)
    dlr.add_routes(app)
    pages.add_routes(app)
    add_metrics(app, settings, client)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/openapi.json", openapi_json)
    return app


def _delivery_store(settings: Settings) -> Callable[[aioredis.Redis], DeliveryStore]:
    """The delivery reports' store: opted-out numbers join the account's suppression list unless
    CAMPAIGN_DLR_SUPPRESS=0."""
    account = settings.sid if settings.dlr_suppress else None
    return lambda native: AsyncDeliveryReports(native, suppress_opt_outs_of=account)


async def healthz(request: web.Request) -> web.Response:
    return json_response(Health(status="ok"))


async def readyz(request: web.Request) -> web.Response:
    """Ready: Redis answers and holds the intake's scripts (loaded again if Redis lost them)."""
    try:
        await request.app[SERVICE].intake.load_scripts()
    except redis.RedisError as e:
        # The details (an address, a sentinel's) go to the log: /readyz answers anyone who asks.
        structlog.get_logger("campaign.service").warning("service.not_ready", error=str(e))
        raise ApiError(503, "unavailable", "Redis cannot be reached") from e
    return json_response(Health(status="ready"))


async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(body=openapi.document(), content_type="application/json")
