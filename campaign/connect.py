"""What a command works on, built from the environment when it runs: a Redis client, or `Campaigns`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import redis

from schemas.settings import Settings

if TYPE_CHECKING:
    from producer import Campaigns


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(Settings.from_environ().redis_url)


def campaigns() -> Campaigns:
    from producer import Campaigns

    return Campaigns.from_environ()
