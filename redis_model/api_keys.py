"""The HTTP service's API keys: created, listed and revoked by name or id, found by the key's SHA-256
(the key itself is never stored); and the status pages' sessions they open, signed out."""

from __future__ import annotations

import hashlib
import math
import secrets
import time

import msgspec
import redis
import redis.asyncio as aioredis

from redis_model import keys
from schemas.errors import InputError

KEY_PREFIX = "ck_"  # a key's visible mark, so that one pasted in the wrong place is recognised
MAX_NAME_CHARS = 64
_CLOCKS_APART_S = 300  # how far behind another host's clock may be


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    """An API key's record: never the key, only what names it and its rate."""

    id: str
    name: str
    rate: float | None = None  # messages per second, per `campaign serve` process; None: no limit
    created_at: float = 0.0  # Unix seconds


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(ApiKey).decode


def digest(key: str) -> str:
    """The SHA-256 (hex) of an API key: all that is stored of it."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh API key: 256 random bits, URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _checked_name(name: str) -> str:
    if not (0 < len(name) <= MAX_NAME_CHARS and name.isprintable() and not name.isspace()):
        raise InputError(f"key name {name[:80]!r} must be 1-{MAX_NAME_CHARS} printable characters")
    return name


def _checked_rate(rate: float | None) -> float | None:
    if rate is not None and not (0 < rate < 1e9):  # also refuses nan and inf
        raise InputError(f"rate {rate!r} must be more than 0 messages per second")
    return rate


class ApiKeyStore:
    """API keys on one `redis.Redis` (bytes): the `campaign keys` commands' store."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def create(self, name: str, rate: float | None = None) -> tuple[ApiKey, str]:
        """A new key named `name` (unique) with `rate` messages per second: its record and the key,
        which is returned this once and never stored."""
        record = ApiKey(
            id="key_" + secrets.token_hex(6),
            name=_checked_name(name),
            rate=_checked_rate(rate),
            created_at=time.time(),
        )
        key = new_key()
        key_digest = digest(key)
        if not self.client.hsetnx(keys.API_KEYS_BY_NAME, name, key_digest):
            raise InputError(f"an API key named {name!r} exists; revoke it first or choose another name")
        self.client.hset(keys.API_KEYS_BY_DIGEST, key_digest, _encode(record))
        return record, key

    def all(self) -> list[ApiKey]:
        """Every key's record, oldest first."""
        stored: dict[bytes, bytes] = self.client.hgetall(keys.API_KEYS_BY_DIGEST)  # type: ignore[assignment]
        return sorted((_decode(value) for value in stored.values()), key=lambda k: k.created_at)

    def revoke(self, name_or_id: str) -> ApiKey:
        """Remove the key named or numbered `name_or_id`; its record. `InputError` for no such key."""
        stored: dict[bytes, bytes] = self.client.hgetall(keys.API_KEYS_BY_DIGEST)  # type: ignore[assignment]
        for key_digest, value in stored.items():
            record = _decode(value)
            if name_or_id in (record.name, record.id):
                with self.client.pipeline(transaction=True) as pipe:
                    pipe.hdel(keys.API_KEYS_BY_DIGEST, key_digest)
                    pipe.hdel(keys.API_KEYS_BY_NAME, record.name)
                    pipe.execute()
                return record
        raise InputError(f"no API key named or numbered {name_or_id!r} (`campaign keys list` shows them)")

    def find(self, key: str) -> ApiKey | None:
        """The record of `key`; None when it is not a key (or was revoked)."""
        value: bytes | None = self.client.hget(keys.API_KEYS_BY_DIGEST, digest(key))  # type: ignore[assignment]
        return None if value is None else _decode(value)


class AsyncApiKeyStore:
    """The look-up of `ApiKeyStore` on a `redis.asyncio.Redis`: what the HTTP service asks."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    async def find_digest(self, key_digest: str) -> ApiKey | None:
        """The record of the key whose SHA-256 is `key_digest`; None when there is none."""
        value: bytes | None = await self.client.hget(keys.API_KEYS_BY_DIGEST, key_digest)  # type: ignore[misc, assignment]
        return None if value is None else _decode(value)

    async def sign_out(self, session_id: str, until: float) -> None:
        """End a status pages' session its key opened, before its cookie's end (Unix seconds): kept until
        then and five minutes more, for the pods whose clocks run behind this one's."""
        await self.client.set(keys.signed_out(session_id), b"", exat=math.ceil(until) + _CLOCKS_APART_S)

    async def find_session_key(self, key_digest: str, session_id: str) -> ApiKey | None:
        """The record of the key a status pages' session was opened with, while that key is not revoked and
        the session not signed out; one round trip."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hget(keys.API_KEYS_BY_DIGEST, key_digest)
            pipe.exists(keys.signed_out(session_id))
            value, ended = await pipe.execute()
        return None if value is None or ended else _decode(value)
