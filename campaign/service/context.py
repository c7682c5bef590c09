"""What every handler of one process works with: the Python API, the message intake, the delivery
reports' store, the keys' cache, the rate limiter, the settings and the service's limits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from campaign.service.auth import KeyCache, RateLimiter
from campaign.service.config import ServiceConfig
from producer import AsyncCampaigns
from redis_model.message_intake import AsyncMessageIntake
from schemas.delivery import DeliveryReport
from schemas.settings import Settings


class DeliveryStore(Protocol):
    """Where the receiver hands delivery reports (`redis_model.delivery.AsyncDeliveryReports`): stored,
    durably, once `record` returns (what it returns is the store's own account); the same report again
    changes nothing."""

    async def record(self, reports: Sequence[DeliveryReport]) -> object: ...

    async def match_early(self) -> object:
        """Record the reports that came before their request was settled, once it is."""


@dataclass(frozen=True)
class Service:
    campaigns: AsyncCampaigns
    intake: AsyncMessageIntake  # single messages; the API key's id is their idempotency scope
    deliveries: DeliveryStore  # the reports `/v1/dlr/kaleyra` receives
    keys: KeyCache
    limiter: RateLimiter
    settings: Settings
    config: ServiceConfig


SERVICE = web.AppKey("service", Service)


def service_of(request: web.Request) -> Service:
    return request.app[SERVICE]
