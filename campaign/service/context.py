"""What every handler of one process works with: the Python API, the message intake, the keys' cache,
the rate limiter, the settings and the service's limits."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from campaign.service.auth import KeyCache, RateLimiter
from campaign.service.config import ServiceConfig
from producer import AsyncCampaigns
from redis_model.message_intake import AsyncMessageIntake
from schemas.settings import Settings


@dataclass(frozen=True)
class Service:
    campaigns: AsyncCampaigns
    intake: AsyncMessageIntake  # single messages; the API key's id is their idempotency scope
    keys: KeyCache
    limiter: RateLimiter
    settings: Settings
    config: ServiceConfig


SERVICE = web.AppKey("service", Service)


def service_of(request: web.Request) -> Service:
    return request.app[SERVICE]
