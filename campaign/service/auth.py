"""Who may call: `Authorization: Bearer KEY` checked against the API keys (cached in the process for a
few seconds, so that a request costs no Redis command for it), and each key's rate in this process."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from campaign.service.dlr_config import DLR_PATH
from campaign.service.errors import ApiError, Handler
from redis_model.api_keys import ApiKey, AsyncApiKeyStore, digest

# aiohttp 3.12+ warns on a request's storage keyed by a string.
_API_KEY: Any = web.RequestKey("api_key", ApiKey) if hasattr(web, "RequestKey") else "campaign.api_key"
# Open to all; the delivery-report receiver checks its own shared secret (Kaleyra holds no API key).
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json", DLR_PATH})
# The status pages sign their operator in with a session cookie of their own (campaign.service.pages).
PAGES_PREFIX, PAGES_ROOT = "/ui", "/"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="campaign"'}


class KeyCache:
    """API keys found in Redis, trusted for `ttl_s`: a revoked key is refused within that time. A key
    not found is asked again each time (a new key works at once)."""

    def __init__(self, store: AsyncApiKeyStore, ttl_s: float) -> None:
        self.store, self.ttl_s = store, ttl_s
        self._found: dict[str, tuple[ApiKey, float]] = {}

    async def find(self, key: str) -> ApiKey | None:
        key_digest = digest(key)
        now = time.monotonic()
        cached = self._found.get(key_digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        record = await self.store.find_digest(key_digest)
        if record is None:
            self._found.pop(key_digest, None)
        else:
            self._found[key_digest] = (record, now + self.ttl_s)
        return record


class RateLimiter:
    """A token bucket per API key holding a second's worth of its rate: per process, so N processes
    behind one port let a key send up to N times its rate."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, when counted)

    def take(self, key: ApiKey, messages: int) -> None:
        """Spend `messages` of the key's tokens, or refuse with 429 and how long to wait. A request of
        more messages than the bucket holds goes once the bucket is full, and leaves it in debt."""
        if key.rate is None:
            return
        capacity = max(key.rate, 1.0)
        now = time.monotonic()
        tokens, at = self._buckets.get(key.id, (capacity, now))
        tokens = min(capacity, tokens + (now - at) * key.rate)
        needed = min(float(messages), capacity)
        if tokens < needed:
            self._buckets[key.id] = (tokens, now)
            wait = max(1, math.ceil((needed - tokens) / key.rate))
            raise ApiError(
                429,
                "rate_limited",
                f"API key {key.name!r} may send {key.rate:g} messages a second; retry after {wait} s",
                headers={"Retry-After": str(wait)},
            )
        self._buckets[key.id] = (tokens - messages, now)


def api_key_of(request: web.Request) -> ApiKey:
    """The API key the request was authenticated with."""
    key: ApiKey = request[_API_KEY]
    return key


def _is_page(path: str) -> bool:
    return path in (PAGES_ROOT, PAGES_PREFIX) or path.startswith(PAGES_PREFIX + "/")


def auth_middleware(keys_of: Callable[[web.Request], KeyCache]) -> Middleware:
    """The middleware that refuses a request without a known API key (401) and names the key for the
    handlers (`api_key_of`); health, the API's description and the delivery-report receiver are open."""

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in PUBLIC_PATHS or _is_page(request.path):
            return await handler(request)
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ApiError(
                401, "unauthorized", "send the header Authorization: Bearer KEY", headers=_CHALLENGE
            )
        record = await keys_of(request).find(key.strip())
        if record is None:
            raise ApiError(
                401, "unauthorized", "the API key is not known (revoked, or mistyped)", headers=_CHALLENGE
            )
        request[_API_KEY] = record
        return await handler(request)

    return authenticate
