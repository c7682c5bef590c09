"""What a command works on, built from the environment when it runs: a Redis client, or `Campaigns`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import redis

from redis_model.connection import sync_client
from schemas.settings import Settings

if TYPE_CHECKING:
    from producer import Campaigns


def redis_client() -> redis.Redis:
    return settings_and_client()[1]


def settings_and_client() -> tuple[Settings, redis.Redis]:
    """The process's settings and a client of the Redis they name."""
    settings = Settings.from_environ()
    return settings, sync_client(settings)


def campaigns() -> Campaigns:
    from producer import Campaigns

    return Campaigns.from_environ()
