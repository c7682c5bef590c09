"""Redis clients made from the settings: REDIS_URL's server, or with REDIS_SENTINELS the master that
Sentinel names, followed through a failover.

A Sentinel client asks the sentinels for the master's address at each new connection, and drops a
connection whose server answers READONLY (a master demoted to a replica) as a connection error, so
the next command connects to the new master. Commands are not retried inside redis-py (as with
`from_url`): a script whose reply was lost may have run, and the callers' own patience (the ledger's,
the broker's recovering consumer, a job's retries) knows what a retry means for them.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.connection import parse_url as parse_async_url
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.connection import parse_url
from redis.sentinel import Sentinel

from schemas.settings import Settings

# A server that stops answering (its host gone, a partition) is given up after this, and the sentinels
# are asked again; longer than any command's own blocking wait (the lanes' XREADGROUP waits 1 s).
SOCKET_TIMEOUT_S = 10.0
# An address that does not accept a connection (a master just killed, a sentinel down) is left quickly.
CONNECT_TIMEOUT_S = 2.0
_FAILOVER_DEFAULTS = {
    "socket_timeout": SOCKET_TIMEOUT_S,
    "socket_connect_timeout": CONNECT_TIMEOUT_S,
    "socket_keepalive": True,
}


def sync_client(settings: Settings, **options: Any) -> redis.Redis:
    """A client of the Redis `settings` name; `options` (socket timeouts, say) go to its connections."""
    if not settings.redis_sentinels:
        return redis.Redis.from_url(settings.redis_url, **options)
    sentinel = Sentinel(settings.redis_sentinels, sentinel_kwargs=_sentinel_options(settings, options))
    client: _SentinelRedis = sentinel.master_for(
        settings.redis_sentinel_master,
        redis_class=_SentinelRedis,
        **_master_options(settings, parse_url, options),
    )
    client.owned_sentinel = sentinel
    return client


def async_client(settings: Settings, **options: Any) -> aioredis.Redis:
    """`sync_client` for asyncio."""
    if not settings.redis_sentinels:
        return aioredis.Redis.from_url(settings.redis_url, **options)
    sentinel = AsyncSentinel(settings.redis_sentinels, sentinel_kwargs=_sentinel_options(settings, options))
    client: _AsyncSentinelRedis = sentinel.master_for(
        settings.redis_sentinel_master,
        redis_class=_AsyncSentinelRedis,
        **_master_options(settings, parse_async_url, options),
    )
    client.owned_sentinel = sentinel
    return client


class _SentinelRedis(redis.Redis):
    """The master's client, which closes the sentinels' connections with its own."""

    owned_sentinel: Sentinel | None = None

    def close(self) -> None:
        super().close()
        if self.owned_sentinel is not None:
            self.owned_sentinel.close()


class _AsyncSentinelRedis(aioredis.Redis):
    """The master's asyncio client, which closes the sentinels' connections with its own."""

    owned_sentinel: AsyncSentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        for sentinel in self.owned_sentinel.sentinels if self.owned_sentinel is not None else ():
            await sentinel.aclose()


def _master_options(settings: Settings, parse: Any, options: dict[str, Any]) -> dict[str, Any]:
    """REDIS_URL's database, credentials, TLS and query options (its host and port are Sentinel's to
    name), the failover's socket defaults, then `options`."""
    from_url = parse(settings.redis_url)
    for address in ("host", "port"):
        from_url.pop(address, None)
    tls = from_url.pop("connection_class", None)
    if tls is not None and "SSL" in tls.__name__:
        from_url["ssl"] = True  # the Sentinel pool picks its own TLS connection class from this
    return _FAILOVER_DEFAULTS | from_url | options


def _sentinel_options(settings: Settings, options: dict[str, Any]) -> dict[str, Any]:
    """How the sentinels themselves are reached: the same socket timeouts, their own password."""
    reach = {
        name: value for name, value in (_FAILOVER_DEFAULTS | options).items() if name.startswith("socket_")
    }
    if settings.redis_sentinel_password:
        reach["password"] = settings.redis_sentinel_password
    return reach
